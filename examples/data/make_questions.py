"""Write questions.tsv: short questions labelled by the kind of answer they ask
for, in six classes like TREC's coarse ones (Li and Roth, 2002): ABBR
(abbreviation), DESC (description), ENTY (entity), HUM (person), LOC
(location) and NUM (number, date).

The corpus is synthetic, written by this script from the templates and word
lists below, so it can ship with skdl under its own license (BSD-3-Clause).
It is built so that no single word gives the class away: "what", "which",
"how", "where" and "name" open questions of several classes, and most
questions name a place, a person and a thing (river, author, instrument...)
whatever they ask; what decides is a short phrase ("what river", "which
author of", "how many", "stand for", "the word ... come from"), the kind of
n-gram a convolution over word embeddings detects and a bag of words cannot
see. Run ``python examples/data/make_questions.py`` to rebuild
the file (the same seed gives the same file).
"""
from pathlib import Path

import numpy as np

PLACES = ["river", "city", "country", "mountain", "lake", "island", "province",
          "desert", "harbour", "valley", "village", "forest"]
PEOPLE = ["author", "inventor", "president", "painter", "composer", "scientist",
          "king", "actor", "founder", "captain", "poet", "architect"]
THINGS = ["animal", "instrument", "disease", "language", "sport", "plant", "colour",
          "currency", "drink", "game", "machine", "festival"]
MEASURES = ["year", "number", "age", "length", "height", "size", "population",
            "distance", "date", "price", "weight", "speed"]
NOUNS = {"LOC": PLACES, "HUM": PEOPLE, "ENTY": THINGS, "NUM": MEASURES}
NAMES = ["varda", "oskel", "marrow", "telun", "brisca", "quenby", "halden", "ostra",
         "pellin", "rookfield", "sarne", "ulvik", "dorran", "fennick", "galway",
         "istra", "jorvale", "kettering", "lissom", "morwen", "nantle", "orrin",
         "pasco", "rhyll", "tamsin", "wendover", "yarrow", "zennor", "abbot", "calder"]
VERBS = ["invent", "discover", "name", "paint", "describe", "ban", "found", "build",
         "change", "measure", "visit", "remember"]
LETTERS = "abcdefghiklmnoprstuvw"
OPENERS = ["", "", "", "", "tell me", "do you know", "can you tell me", "i wonder"]

# Questions about a place, a person, a thing or a number share their frames:
# the noun asked about ({asked}) comes first, two nouns of other kinds
# ({other}, {third}) fill the rest. The class is the kind of the noun right
# after "what", "which" or "the", which a bag of words cannot tell from the
# other two: it sees three kinds of noun in every question.
FRAMES = [
    "what {asked} did the {other} of the {third} {verb}",
    "which {asked} of the {third} did the {other} {verb}",
    "name the {asked} that the {other} of the {third} would {verb}",
    "what {asked} does the {other} from the {third} {verb}",
    "which {asked} did the {other} {verb} near the {third} of {name}",
    "what was the {asked} the {other} of {name} saw in the {third}",
    "what {asked} is the {other} of the {third} known for",
]
# Descriptions and abbreviations have frames of their own, with the same
# nouns in them.
TEMPLATES = {
    "DESC": [
        "why did the {other} {verb} the {third}",
        "how did the {other} of the {third} {verb} it",
        "what is a {asked}",
        "how does the {third} of {name} work",
        "where does the word {name} come from",
        "what does the {other} of the {third} do",
        "why is the {third} of {name} known for the {other}",
    ],
    "ABBR": [
        "what does {acronym} stand for",
        "what is the full form of {acronym}",
        "what does the {other} of the {third} mean by {acronym}",
        "what is the abbreviation for the {third} of {name}",
        "{acronym} stands for what",
    ],
}
# Class shares as in TREC's training questions, roughly (few abbreviations).
SHARES = {"ABBR": 0.05, "DESC": 0.2, "ENTY": 0.2, "HUM": 0.2, "LOC": 0.15, "NUM": 0.2}


def question(rng, label):
    """One question of class ``label``, as lower-case words and a '?'."""
    if label in NOUNS:
        template = rng.choice(FRAMES)
        kinds = [k for k in NOUNS if k != label]
        other_kind, third_kind = rng.choice(kinds, 2, replace=False)
        asked = rng.choice(NOUNS[label])
    else:
        template = rng.choice(TEMPLATES[label])
        other_kind, third_kind = rng.choice(list(NOUNS), 2, replace=False)
        asked = rng.choice(NOUNS[rng.choice(list(NOUNS))])
    words = template.format(
        asked=asked, other=rng.choice(NOUNS[other_kind]),
        third=rng.choice(NOUNS[third_kind]), name=rng.choice(NAMES),
        verb=rng.choice(VERBS),
        acronym="".join(rng.choice(list(LETTERS), rng.randint(2, 5))))
    opener = rng.choice(OPENERS)
    return " ".join(filter(None, [opener, words, "?"]))


def main(n=3000, seed=0):
    rng = np.random.RandomState(seed)
    labels = rng.choice(list(SHARES), size=n, p=list(SHARES.values()))
    rows = [(label, question(rng, label)) for label in labels]
    path = Path(__file__).with_name("questions.tsv")
    with open(path, "w") as f:
        f.write("label\ttext\n")
        for label, text in rows:
            f.write(f"{label}\t{text}\n")
    print(f"wrote {n} questions to {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
