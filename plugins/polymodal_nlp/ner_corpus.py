"""The embedded NER corpus, written by the project: English sentences in several registers
(news, reviews, sport, business, travel, everyday prose) with PER / ORG / LOC / MISC slots,
filled from name lists. Train and test use disjoint names (a test sentence names people,
organisations and places the model never saw), so the score measures reading the context,
not remembering names. Deterministic for a seed."""

from __future__ import annotations

import random
import re
from typing import Any

PER = ["Maria Lopez", "John Carter", "Aiko Tanaka", "Peter Novak", "Fatima Khan", "Liam O'Brien",
       "Sofia Rossi", "Daniel Kim", "Grace Mensah", "Henrik Larsen", "Olga Petrova", "Raj Patel",
       "Emma Schneider", "Lucas Martin", "Chen Wei", "Amara Okafor", "Thomas Meyer",
       "Isabel Duarte", "Noah Fischer", "Yuki Sato", "Carlos Mendes", "Hannah Berg",
       "Omar Haddad", "Elena Varga", "David Cohen", "Priya Sharma", "Jonas Lindqvist",
       "Ana Silva", "Mark Evans", "Leila Nasser", "Samuel Adeyemi", "Julia Wagner",
       "Ivan Horvat", "Mei Lin", "George Brown", "Nadia Rahman", "Paolo Conti", "Sarah Miller",
       "Kofi Asante", "Ingrid Holm", "Victor Dubois", "Laura Jensen", "Ahmed Farouk",
       "Clara Weiss", "Marco Bianchi", "Rosa Alvarez", "Felix Braun", "Zara Ali",
       "Patrick Walsh", "Helen Clarke", "Tomas Kral", "Lena Vogel", "Diego Ramos",
       "Anna Kowalski", "Ben Turner", "Sakura Ito", "Mateo Garcia", "Eva Horak", "Ruth Okonkwo",
       "Simon Price", "Keller", "Moreau", "Okoye", "Nakamura", "Fernandez", "Lindgren"]
ORG = ["Northwind Bank", "the United Nations", "Acme Robotics", "Greenleaf Foods",
       "Bluewater Energy", "the World Health Organization", "Helix Pharma", "Orbit Airlines",
       "Riverside Hospital", "Summit Motors", "the Red Cross", "Crestview University",
       "Pinecone Software", "Atlas Insurance", "Harbor Logistics", "the Football Association",
       "Silverline Media", "Quantum Labs", "Maple Grocers", "the European Central Bank",
       "Ironwood Steel", "Lakeside Council", "Nova Telecom", "Brightpath Schools",
       "Redstone Capital", "the Metropolitan Museum", "Sunrise Bakery", "Falcon Security",
       "Evergreen Trust", "Cobalt Mining", "the National Weather Service", "Vertex Games",
       "Oakridge Clinic", "Polaris Shipping", "Granite Construction", "Amber Textiles",
       "Kestrel Aerospace", "Willow Publishing", "Meridian Hotels", "Titan Fitness"]
LOC = ["Paris", "Nairobi", "Lisbon", "Osaka", "Toronto", "Berlin", "Cairo", "Lima", "Oslo",
       "Mumbai", "Chicago", "Vienna", "Seoul", "Melbourne", "Dublin", "Prague", "Lagos",
       "Buenos Aires", "Hanoi", "Edinburgh", "the Alps", "Lake Geneva", "Texas", "Bavaria",
       "Sicily", "Patagonia", "the Sahara", "Iceland", "Quebec", "Kyoto", "Marseille",
       "Cape Town", "Helsinki", "Santiago", "Bangkok", "Warsaw", "Portland", "Brazil", "Kenya",
       "Norway", "Morocco", "Vietnam", "New Zealand", "the Danube", "Mount Kenya", "Florence"]
NATIONALITY = ["French", "Japanese", "English", "Spanish", "Brazilian", "Italian", "German",
               "Korean", "Arabic", "Canadian", "Swedish", "Mexican", "Portuguese", "Dutch",
               "Turkish", "Irish", "Polish", "Greek", "Finnish", "Hungarian"]
EVENT = ["the Olympics", "the World Cup", "Christmas", "Ramadan", "the Nobel Prize", "Diwali",
         "the Tour de France", "the Grammy Awards", "the Champions League", "Easter",
         "the Oscars", "Hanukkah", "the Paralympics", "Thanksgiving", "the Booker Prize",
         "the Super Bowl", "Wimbledon", "the Eurovision Song Contest", "Carnival", "Lunar New Year"]

TEMPLATES = [
    # news
    "{PER} was appointed chief executive of {ORG} on Monday.",
    "Officials in {LOC} said the bridge would reopen next week.",
    "{ORG} reported higher profits despite weak demand in {LOC}.",
    "The minister met {PER} in {LOC} to discuss the trade deal.",
    "Thousands gathered in {LOC} to celebrate {EVENT}.",
    "{PER}, a spokesperson for {ORG}, declined to comment.",
    "Flooding closed several roads between {LOC} and {LOC}.",
    "{ORG} will cut 300 jobs at its plant near {LOC}, unions said.",
    "According to {ORG}, prices rose for the third month in a row.",
    "Police in {LOC} arrested two men after the robbery on Friday night.",
    "{PER} won the {EVENT} for her novel about life in {LOC}.",
    "The report by {ORG} warned of a hot summer across {LOC}.",
    "Talks between {ORG} and {ORG} ended without an agreement.",
    "{PER} said the {NAT} team had trained hard for months.",
    "Voters in {LOC} will choose a new mayor in the spring.",
    "The strike at {ORG} entered its second week on Tuesday.",
    "Investigators from {ORG} arrived in {LOC} late on Sunday.",
    "Shares of {ORG} fell sharply after {PER} resigned.",
    # sport
    "{PER} scored twice as the visitors beat the champions in {LOC}.",
    "The {EVENT} final will be played in {LOC} next year.",
    "{PER} finished third in the marathon, behind two runners from {LOC}.",
    "After the match, {PER} thanked the fans who had travelled from {LOC}.",
    "{ORG} fined the club for the crowd trouble at the {EVENT} game.",
    "{PER} broke the national record at the {EVENT} in {LOC}.",
    "The coach, {PER}, expects a tough game against the {NAT} side.",
    # business
    "{ORG} agreed to buy a rival start-up based in {LOC}.",
    "{PER} founded {ORG} in a garage in {LOC} in 1998.",
    "Analysts at {ORG} expect the market to recover by {EVENT}.",
    "{ORG} opened its first store in {LOC} this morning.",
    "The board of {ORG} approved the merger, {PER} confirmed.",
    "{PER} left {ORG} to start a company of her own.",
    "Sales of {NAT} wine grew strongly in {LOC} last year.",
    "{ORG} is hiring engineers who know {NAT} and cloud services.",
    # reviews
    "We stayed at a small hotel in {LOC} and the staff were lovely.",
    "The {NAT} restaurant near the station is the best in {LOC}.",
    "I bought this kettle from {ORG} and it broke after a week.",
    "{PER} gives a wonderful performance in the new film.",
    "Customer service at {ORG} was slow, but they fixed the problem.",
    "The tour guide, {PER}, made the trip to {LOC} unforgettable.",
    "Great {NAT} food, friendly people, and a view over {LOC}.",
    "The flight with {ORG} was delayed by three hours.",
    "My kids loved the museum, especially the dinosaur room.",
    "The book by {PER} is funny, sad and far too short.",
    "Do not order from {ORG}; the parcel never arrived.",
    # everyday prose
    "My sister moved to {LOC} after she married {PER}.",
    "We spent {EVENT} with my grandparents in {LOC}.",
    "{PER} and {PER} are learning {NAT} before their trip.",
    "Every summer we drive from {LOC} to the coast.",
    "{PER} works as a nurse at {ORG}.",
    "The old bakery on the corner still sells bread every morning.",
    "I met {PER} at a conference in {LOC} years ago.",
    "Our neighbour, {PER}, grows tomatoes on her balcony.",
    "The letter from {ORG} said my application was accepted.",
    "{PER} called from {LOC} to say the snow had finally stopped.",
    "We watched the {EVENT} on a small television in the kitchen.",
    "It rained all week, so we stayed inside and read.",
    "{PER} speaks {NAT} at home and {NAT} at work.",
    "The train to {LOC} leaves at seven, so we must hurry.",
    # science, culture, travel
    "Researchers at {ORG} found a new species of frog in {LOC}.",
    "The exhibition at {ORG} shows paintings by {PER}.",
    "{PER} led the expedition across {LOC} in 1911.",
    "A study published by {ORG} links sleep to memory.",
    "The {NAT} festival draws visitors from all over {LOC}.",
    "Hikers in {LOC} were warned about falling rocks.",
    "{PER} composed the music for the {EVENT} ceremony.",
    "The ferry between {LOC} and {LOC} runs twice a day.",
    "{ORG} launched a satellite from a base in {LOC}.",
    "The professor, {PER}, teaches history at {ORG}.",
    "In {LOC}, most shops close early on Saturdays.",
    "{PER} translated the poems from {NAT} into {NAT}.",
    "Volunteers from {ORG} cleaned the beach near {LOC}.",
    "Tickets for the {EVENT} sold out within an hour.",
    "{PER} told reporters that {ORG} had ignored the warnings.",
    "The museum in {LOC} reopened after a long renovation.",
    "{ORG} donated computers to schools in {LOC}.",
    "Fans waited outside the stadium in {LOC} for {PER}.",
]

# Slots -> (entity label, name pool). Nationalities/languages and events are both MISC.
SLOT = re.compile(r"\{(PER|ORG|LOC|NAT|EVENT)\}")
POOLS = {"PER": PER, "ORG": ORG, "LOC": LOC, "NAT": NATIONALITY, "EVENT": EVENT}
LABELS = {"PER": "PER", "ORG": "ORG", "LOC": "LOC", "NAT": "MISC", "EVENT": "MISC"}


def fill(template: str, pools: dict[str, list[str]], rng: random.Random) -> dict[str, Any]:
    """One sentence of ``template`` with names drawn from ``pools`` and its entity spans."""
    text, entities, position, used = "", [], 0, set()
    for match in SLOT.finditer(template):
        text += template[position:match.start()]
        slot = match.group(1)
        choices = [n for n in pools[slot] if n not in used] or pools[slot]
        name = rng.choice(choices)
        used.add(name)
        if name.startswith("the ") and text.lower().endswith("the "):
            name = name[4:]  # "the {EVENT}" with "the Olympics"
        elif text == "" and name.startswith("the "):
            name = "The " + name[4:]
        start = len(text)
        # "the United Nations": the article is not part of the entity.
        skip = 4 if name.lower().startswith("the ") else 0
        entities.append({"start": start + skip, "end": start + len(name), "label": LABELS[slot]})
        text += name
        position = match.end()
    text += template[position:]
    return {"text": text, "entities": entities}


def split_names(seed: int = 0) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Disjoint name pools: about three quarters for training, the rest for the test."""
    rng = random.Random(seed)
    train, test = {}, {}
    for label, names in POOLS.items():
        shuffled = names[:]
        rng.shuffle(shuffled)
        cut = int(len(shuffled) * 0.75)
        train[label], test[label] = shuffled[:cut], shuffled[cut:]
    return train, test


def corpus(train_size: int = 1200, test_size: int = 200, seed: int = 0
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, test) sentences: every template in both, names disjoint between them."""
    rng = random.Random(seed)
    train_pools, test_pools = split_names(seed)

    def sentences(count: int, pools: dict[str, list[str]]) -> list[dict[str, Any]]:
        return [fill(TEMPLATES[i % len(TEMPLATES)], pools, rng) for i in range(count)]

    return sentences(train_size, train_pools), sentences(test_size, test_pools)
