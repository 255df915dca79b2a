"""A character-level language model that writes text, as NumpyDL's RNN examples.

Run with ``python examples/char_lm.py``: an LSTM (``--transformer``: a causal
Transformer encoder) learns to predict each
character of a short bundled text (examples/data/almanac.txt, 2.9 KB written
for skdl, BSD-3-Clause) from the characters before it, then writes text one
character at a time, each drawn from ``predict_proba`` at a temperature. It
prints the training time, how often it predicts the next character of its
text right, and a sample that starts from a prompt.

The language model is an ordinary classifier: the samples are windows of
the previous characters (as ids, padded with 0 at the start of the text) and
the classes are the characters that follow them. The Transformer option
reads the window with learned positions and two encoder blocks whose
attention is causal (each character sees only those before it, as in a GPT),
and the classifier reads the last step's output (``LastStep``), the one that
has seen the whole window.
"""
import argparse
import time
from pathlib import Path

import numpy as np

from _text import Vocabulary, sample
from skdl import (
    LSTM,
    Embedding,
    LastStep,
    NNClassifier,
    PositionalEmbedding,
    TransformerEncoderBlock,
)

DATA = Path(__file__).with_name("data") / "almanac.txt"


def load_text():
    """The bundled text, as one string."""
    return DATA.read_text(encoding="utf-8")


def windows(text, vocabulary, window):
    """Every character of ``text`` with the ``window`` characters before it.

    Returns
    -------
    X : ndarray of shape (len(text), window)
        Character ids; the first characters of the text have fewer
        predecessors, padded with 0 in front.
    y : ndarray of shape (len(text),)
        The characters that follow.
    """
    before = [text[max(0, i - window):i] for i in range(len(text))]
    return vocabulary.pad(before, window, align="right"), np.array(list(text))


def make_model(vocabulary_size, units=128, max_iter=60, random_state=0,
               transformer=False):
    """Embedding + LSTM, or a causal Transformer encoder, classifying the
    next character.

    Parameters
    ----------
    vocabulary_size : int
        Distinct characters plus 2 (padding and unknown).
    units : int, default=128
        The LSTM's units; the Transformer's feed-forward units.
    max_iter : int, default=60
    random_state : int, default=0
    transformer : bool, default=False
        Learned positions, two causal pre-norm encoder blocks (4 heads of 16
        on 64 features, dropout 0.1) and the last step's output instead of
        the LSTM.
    """
    if transformer:
        layers = [Embedding(vocabulary_size, 64, mask_zero=True), PositionalEmbedding(),
                  TransformerEncoderBlock(4, 16, units, causal=True, norm_first=True,
                                          dropout=0.1),
                  TransformerEncoderBlock(4, 16, units, causal=True, norm_first=True,
                                          dropout=0.1),
                  LastStep()]
        learning_rate = 0.001
    else:
        layers = [Embedding(vocabulary_size, 16, mask_zero=True), LSTM(units)]
        learning_rate = 0.005
    return NNClassifier(layers, learning_rate=learning_rate, batch_size=64,
                        max_iter=max_iter, random_state=random_state)


def generate(model, vocabulary, prompt, n_chars, window, temperature=0.5,
             random_state=0):
    """Text that follows ``prompt``, one drawn character at a time.

    Parameters
    ----------
    model : fitted NNClassifier
        Made by :func:`make_model`, fitted on :func:`windows`.
    vocabulary : Vocabulary
    prompt : str
        Characters not in the training text count as unknown.
    n_chars : int
        How many characters to write.
    window : int
        The window the model was trained on.
    temperature : float, default=0.5
        0 always takes the likeliest character (and soon repeats itself);
        higher values take more risks.
    random_state : int, default=0

    Returns
    -------
    str
        ``n_chars`` characters, without the prompt.
    """
    rng = np.random.RandomState(random_state)
    text = prompt
    for _ in range(n_chars):
        X = vocabulary.pad([text[-window:]], window, align="right")
        text += model.classes_[sample(model.predict_proba(X)[0], temperature, rng)]
    return text[len(prompt):]


def main(max_iter=60, window=32, units=128, n_chars=400, temperature=0.5,
         prompt="In May the ", n_train_chars=None, random_state=0, transformer=False):
    """Train on the bundled text (its first ``n_train_chars`` characters if
    given), print the result and a sample of ``n_chars`` characters.

    Returns
    -------
    str
        The sample, without the prompt.
    """
    text = load_text()[:n_train_chars]
    vocabulary = Vocabulary().fit([text])
    X, y = windows(text, vocabulary, window)
    model = make_model(vocabulary.size, units=units, max_iter=max_iter,
                       random_state=random_state, transformer=transformer)
    start = time.perf_counter()
    model.fit(X, y)
    kind = "Transformer" if transformer else "LSTM"
    print(f"character {kind}: {len(text)} characters, {len(vocabulary.ids)} distinct; "
          f"next character right {model.score(X, y):.1%} of the time on its text, "
          f"{model.n_iter_} epochs in {time.perf_counter() - start:.1f} s")
    written = generate(model, vocabulary, prompt, n_chars, window, temperature,
                       random_state)
    print(f"sample at temperature {temperature}:")
    print(prompt + written)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transformer", action="store_true",
                        help="a causal Transformer encoder instead of the LSTM")
    main(transformer=parser.parse_args().transformer)
