"""A word n-gram language model of training transcripts, written as an ARPA file for KenLM
(torchaudio's ``ctc_decoder`` reads it through flashlight-text).

Interpolated absolute discounting (Ney et al. 1994): for a context h seen c(h) times followed
by N1+(h) distinct words, p(w | h) = max(c(h w) - D, 0) / c(h) + g(h) p(w | h'), where
g(h) = D N1+(h) / c(h) and h' drops the oldest word. An interpolated model is exactly a
backoff model whose seen entries hold the interpolated probabilities and whose backoff
weight is g(h) (an unseen w gets g(h) p(w | h'), the first term being 0), so the ARPA file
holds log10 p for every seen n-gram and log10 g for every context.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

START, END, UNKNOWN = "<s>", "</s>", "<unk>"


def write_arpa(path: Path, sentences: list[list[str]], order: int = 3,
               discount: float = 0.7) -> None:
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    for words in sentences:
        padded = [START, *words, END]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                gram = tuple(padded[i:i + n])
                if n == 1 and gram == (START,):
                    continue
                counts[n][gram] += 1
    context_total: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    followers: list[defaultdict[tuple[str, ...], set[str]]] = [
        defaultdict(set) for _ in range(order + 1)]
    for n in range(2, order + 1):
        for gram, count in counts[n].items():
            context_total[n][gram[:-1]] += count
            followers[n][gram[:-1]].add(gram[-1])
    total = sum(counts[1].values())
    vocabulary = sorted(w for (w,) in counts[1])
    probability: dict[tuple[str, ...], float] = {}
    # unigrams: relative frequencies, a little mass kept for <unk>
    unknown_mass = 1.0 / (total + 1)
    for (word,), count in counts[1].items():
        probability[(word,)] = (1 - unknown_mass) * count / total
    probability[(UNKNOWN,)] = unknown_mass

    def backoff(context: tuple[str, ...]) -> float:
        n = len(context) + 1
        seen = context_total[n].get(context, 0)
        return discount * len(followers[n][context]) / seen if seen else 1.0

    def lower(gram: tuple[str, ...]) -> float:
        if gram in probability:
            return probability[gram]
        if len(gram) == 1:
            return probability[(UNKNOWN,)]
        return backoff(gram[:-1]) * lower(gram[1:])

    for n in range(2, order + 1):
        for gram, count in counts[n].items():
            seen = context_total[n][gram[:-1]]
            probability[gram] = (max(count - discount, 0.0) / seen
                                 + backoff(gram[:-1]) * lower(gram[1:]))
    lines = ["", "\\data\\"]
    grams_by_order: list[list[tuple[str, ...]]] = [
        [(UNKNOWN,), (START,), *[(w,) for w in vocabulary if w != START]]]
    grams_by_order += [sorted(counts[n]) for n in range(2, order + 1)]
    for n, grams in enumerate(grams_by_order, start=1):
        lines.append(f"ngram {n}={len(grams)}")
    for n, grams in enumerate(grams_by_order, start=1):
        lines += ["", f"\\{n}-grams:"]
        for gram in grams:
            logp = -99.0 if gram == (START,) else math.log10(probability[gram])
            entry = f"{logp:.6f}\t{' '.join(gram)}"
            if n < order and gram in context_total[n + 1]:
                entry += f"\t{math.log10(backoff(gram)):.6f}"
            lines.append(entry)
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines))
