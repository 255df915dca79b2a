"""Write reviews.tsv: short product reviews with their sentiment (1 good, 0 bad).

The corpus is synthetic, written by this script from the word lists below, so
it can ship with skdl under its own license (BSD-3-Clause). It is built so
word order matters: "not" and "never" flip a judgement, "but" hands the verdict
to the second clause, and "hardly" weakens a good word into a bad verdict. A
bag of words cannot see those; a recurrent network reading the tokens in order
can. Run ``python examples/data/make_reviews.py`` to rebuild the file (the same
seed gives the same file).
"""
from pathlib import Path

import numpy as np

THINGS = ["battery", "screen", "camera", "sound", "keyboard", "price", "design",
          "charger", "case", "speaker", "display", "software", "delivery", "manual",
          "strap", "lens", "fan", "cable", "app", "warranty"]
GOOD = ["good", "great", "excellent", "fine", "solid", "reliable", "sharp", "fast",
        "comfortable", "bright", "quiet", "sturdy", "perfect", "lovely", "decent"]
BAD = ["bad", "poor", "terrible", "awful", "weak", "slow", "flimsy", "noisy", "dim",
       "broken", "useless", "cheap", "disappointing", "faulty", "horrible"]
INTENSIFIERS = ["", "", "very", "really", "quite", "truly", "rather"]
OPENERS = ["", "", "honestly", "overall", "i think", "in my opinion", "to be fair"]


def clause(rng, good):
    """(words, verdict) of one judgement, maybe negated."""
    thing = rng.choice(THINGS)
    negate = rng.rand() < 0.35
    weak = not negate and rng.rand() < 0.1
    # The word says the opposite when the clause is negated or weakened.
    word_good = good != (negate or weak)
    word = rng.choice(GOOD if word_good else BAD)
    words = ["the", thing, "is"]
    if negate:
        words.append(rng.choice(["not", "never"]))
    if weak and word_good:
        words.append("hardly")
    elif weak:  # "hardly" only weakens good words; fall back to a plain clause
        word = rng.choice(GOOD if good else BAD)
    intensifier = rng.choice(INTENSIFIERS)
    if intensifier:
        words.append(intensifier)
    words.append(word)
    return words


def review(rng):
    good = rng.rand() < 0.5
    words = [w for w in rng.choice(OPENERS).split()]
    if rng.rand() < 0.4:  # "X but Y": the verdict is Y's
        words += clause(rng, not good) + ["but"] + clause(rng, good)
    else:
        words += clause(rng, good)
    return " ".join(words), int(good)


def main(n=4000, seed=0):
    rng = np.random.RandomState(seed)
    rows = [review(rng) for _ in range(n)]
    path = Path(__file__).with_name("reviews.tsv")
    with open(path, "w") as f:
        f.write("label\ttext\n")
        for text, label in rows:
            f.write(f"{label}\t{text}\n")
    print(f"wrote {n} reviews to {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
