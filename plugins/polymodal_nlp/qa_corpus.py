"""The embedded QA corpus, written by the project: paragraphs about fictional towns and
companies (facts drawn from the project's lists, phrased by several sentence patterns in a
shuffled order) and questions about them, asked in several ways. Some paragraphs leave a
fact out and are still asked about it: those questions have no answer (SQuAD 2.0 style).
Train and test use different paragraphs. Deterministic for a seed."""

from __future__ import annotations

import random
from typing import Any

FIRST = ["Alma", "Bruno", "Clara", "Dmitri", "Esther", "Farid", "Greta", "Hugo", "Ines",
         "Jasper", "Katya", "Luis", "Mira", "Nils", "Odile", "Pavel", "Quinn", "Rena",
         "Stefan", "Tova", "Umar", "Vera", "Wim", "Xenia", "Yusuf", "Zofia"]
LAST = ["Ambrose", "Becker", "Castell", "Dorn", "Ekwueme", "Falk", "Gruber", "Hollis",
        "Ibarra", "Jovanovic", "Kaur", "Lund", "Moreno", "Nakashima", "Ortiz", "Pellegrini",
        "Quist", "Rahimi", "Sorensen", "Takeda", "Uribe", "Valente", "Whitlock", "Yilmaz"]
TOWN_START = ["Ash", "Bram", "Cold", "Deer", "Elm", "Fair", "Glen", "Holl", "Iron", "Kings",
              "Lark", "Mill", "North", "Oak", "Pine", "Red", "Stone", "Thorn", "Wil", "Wolf"]
TOWN_END = ["ford", "by", "haven", "mouth", "wick", "field", "stead", "bridge", "port", "dale"]
COUNTRIES = ["Norway", "Chile", "Portugal", "Canada", "Scotland", "Austria", "Ghana",
             "New Zealand", "Finland", "Uruguay", "Ireland", "Slovenia"]
RIVERS = ["the Vessa", "the Orrin", "the Calder", "the Mease", "the Tolva", "the Brenn",
          "the Ysel", "the Marrow", "the Quill", "the Dunmore"]
PRODUCTS = ["glass lanterns", "smoked cheese", "wooden boats", "wool blankets", "apple cider",
            "copper kettles", "pocket watches", "clay tiles", "linen shirts", "honey cakes",
            "violins", "bicycle frames", "rope", "silver jewellery", "paper kites"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
FESTIVALS = ["Lantern Night", "the Harvest Fair", "the River Games", "Founders' Day",
             "the Kite Parade", "the Winter Market", "the Music Week"]
COMPANY_WORDS = ["Aurora", "Beacon", "Cinder", "Delta", "Ember", "Fathom", "Garnet", "Halcyon",
                 "Indigo", "Juniper", "Keystone", "Lumen", "Monarch", "Nimbus", "Onyx",
                 "Pioneer", "Quartz", "Radiant", "Sterling", "Tidal"]
COMPANY_KINDS = ["Robotics", "Foods", "Textiles", "Software", "Motors", "Pharma", "Optics",
                 "Shipping", "Energy", "Furniture"]
GOODS = ["warehouse robots", "frozen dumplings", "rain jackets", "accounting software",
         "electric scooters", "allergy medicine", "camera lenses", "cargo barges",
         "solar panels", "office chairs"]


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _town_facts(rng: random.Random, name: str) -> dict[str, str]:
    return {"name": name, "country": rng.choice(COUNTRIES), "year": str(rng.randint(1150, 1890)),
            "population": f"{rng.randint(3, 95)},{rng.randint(0, 999):03d}",
            "river": rng.choice(RIVERS), "product": rng.choice(PRODUCTS),
            "mayor": _person(rng), "festival": rng.choice(FESTIVALS),
            "month": rng.choice(MONTHS)}


TOWN_SENTENCES = {
    "country": ["{name} is a small town in {country}.", "{name} lies in the north of {country}.",
                "The town of {name} is in {country}."],
    "year": ["It was founded in {year} by fishermen.", "Records show that {name} was founded "
             "in {year}.", "The first houses of {name} were built in {year}."],
    "population": ["About {population} people live there today.", "Its population is "
                   "{population}.", "Today {name} has {population} inhabitants."],
    "river": ["{river} runs through the old town.", "The town grew on the banks of {river}.",
              "A stone bridge crosses {river} in the centre of {name}."],
    "product": ["{name} is best known for its {product}.", "Visitors come to buy {product}, "
                "which local workshops have made for centuries.", "The town's workshops are "
                "famous for {product}."],
    "mayor": ["The current mayor is {mayor}.", "{mayor} has been mayor since the last "
              "election.", "The town council is led by mayor {mayor}."],
    "festival": ["Every {month}, the town celebrates {festival}.", "{festival} takes place in "
                 "{month} each year.", "In {month} the streets fill for {festival}."],
}
TOWN_QUESTIONS = {
    "country": (["In which country is {name}?", "What country is {name} located in?"],
                "country"),
    "year": (["When was {name} founded?", "In what year was {name} founded?"], "year"),
    "population": (["How many people live in {name}?", "What is the population of {name}?"],
                   "population"),
    "river": (["Which river runs through {name}?", "What river is {name} built on?"],
              "river"),
    "product": (["What is {name} known for?", "What do the workshops of {name} make?"],
                "product"),
    "mayor": (["Who is the mayor of {name}?", "Who leads the town council of {name}?"],
              "mayor"),
    "festival": (["Which festival does {name} celebrate?", "What is celebrated in {name} "
                  "every year?"], "festival"),
    "month": (["In which month is {festival} held in {name}?", "When does {name} hold "
               "{festival}?"], "month"),
}


def _company_facts(rng: random.Random, name: str) -> dict[str, str]:
    return {"name": name, "founder": _person(rng), "year": str(rng.randint(1950, 2021)),
            "city": f"{rng.choice(TOWN_START)}{rng.choice(TOWN_END)}",
            "goods": rng.choice(GOODS), "employees": f"{rng.randint(1, 40)},{rng.randint(0, 9)}00",
            "ceo": _person(rng), "country": rng.choice(COUNTRIES)}


COMPANY_SENTENCES = {
    "founder": ["{name} was started by {founder} in {year}.", "{founder} founded {name} in "
                "{year}, working from a rented garage."],
    "city": ["The company is based in {city}, {country}.", "Its headquarters are in {city}, "
             "{country}.", "{name} has its head office in {city}, {country}."],
    "goods": ["{name} makes {goods}.", "Most of its revenue comes from {goods}.", "The firm "
              "is known for its {goods}."],
    "employees": ["It employs {employees} people.", "The company has {employees} employees "
                  "worldwide.", "Around {employees} people work for {name}."],
    "ceo": ["{ceo} is the chief executive.", "Since 2019 the company has been run by {ceo}.",
            "The chief executive, {ceo}, plans to open new factories."],
}
COMPANY_QUESTIONS = {
    "founder": (["Who founded {name}?", "Who started {name}?"], "founder"),
    "year": (["When was {name} founded?", "In what year was {name} started?"], "year"),
    "city": (["Where is {name} based?", "In which city are the headquarters of {name}?"],
             "city"),
    "goods": (["What does {name} make?", "What products is {name} known for?"], "goods"),
    "employees": (["How many people work for {name}?", "How many employees does {name} "
                   "have?"], "employees"),
    "ceo": (["Who runs {name}?", "Who is the chief executive of {name}?"], "ceo"),
}
# Which sentence states which fact (a question about a left-out sentence has no answer).
TOWN_SOURCE = {"country": "country", "year": "year", "population": "population",
               "river": "river", "product": "product", "mayor": "mayor",
               "festival": "festival", "month": "festival"}
COMPANY_SOURCE = {"founder": "founder", "year": "founder", "city": "city", "goods": "goods",
                  "employees": "employees", "ceo": "ceo"}


def _capitalised(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _paragraph(rng: random.Random, facts: dict[str, str], sentences: dict[str, list[str]],
               questions: dict[str, tuple[list[str], str]], source: dict[str, str],
               title: str) -> dict[str, Any]:
    keys = list(sentences)
    first = keys[0]
    rest = keys[1:]
    rng.shuffle(rest)
    left_out = rest.pop() if rng.random() < 0.4 else None
    context = " ".join(_capitalised(rng.choice(sentences[k]).format(**facts))
                       for k in [first, *rest])
    qas = []
    for key, (phrasings, answer_key) in questions.items():
        question = rng.choice(phrasings).format(**facts)
        if source[key] == left_out:
            qas.append({"question": question, "answers": [], "is_impossible": True})
            continue
        start = context.lower().find(facts[answer_key].lower())
        assert start >= 0, (facts[answer_key], context)
        answer = context[start:start + len(facts[answer_key])]
        qas.append({"question": question, "answers": [{"text": answer,
                                                       "answer_start": start}],
                    "is_impossible": False})
    return {"title": title, "paragraphs": [{"context": context, "qas": qas}]}


def articles(towns: int = 48, companies: int = 32, seed: int = 0) -> list[dict[str, Any]]:
    """SQuAD-style articles, one paragraph each."""
    rng = random.Random(seed)
    town_names = [f"{a}{b}" for a in TOWN_START for b in TOWN_END]
    company_names = [f"{a} {b}" for a in COMPANY_WORDS for b in COMPANY_KINDS]
    rng.shuffle(town_names)
    rng.shuffle(company_names)
    out = [_paragraph(rng, _town_facts(rng, name), TOWN_SENTENCES, TOWN_QUESTIONS,
                      TOWN_SOURCE, name) for name in town_names[:towns]]
    out += [_paragraph(rng, _company_facts(rng, name), COMPANY_SENTENCES, COMPANY_QUESTIONS,
                       COMPANY_SOURCE, name) for name in company_names[:companies]]
    rng.shuffle(out)
    return out


def squad_json(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Articles as a SQuAD v2.0 file (question ids added)."""
    for a, article in enumerate(items):
        for p, paragraph in enumerate(article["paragraphs"]):
            for q, qa in enumerate(paragraph["qas"]):
                qa.setdefault("id", f"{a}-{p}-{q}")
    return {"version": "v2.0", "data": items}


def corpus(seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, test) question records: 64 paragraphs for training, 16 held out."""
    from polymodal_nlp.formats import qa_records

    items = squad_json(articles(seed=seed))["data"]
    return qa_records(items[:64]), qa_records(items[64:])


REAL_QA = "real_qa_lee.json"


def real_text_records() -> list[dict[str, Any]]:
    """The hand-written evaluation set on real text: questions written and answers checked
    by reading, over 20 paragraphs of the Lee corpus' 50 evaluation news documents (ABC
    news, shipped in gensim's test data, LGPL-2.1); no training set of the project reads
    them. SQuAD 2.0 records, some without an answer."""
    import json
    from importlib.resources import files

    from polymodal_nlp.formats import qa_records

    data = json.loads(files("polymodal_nlp").joinpath(REAL_QA).read_text(encoding="utf-8"))
    return qa_records(data["data"])

