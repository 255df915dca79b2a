"""Text helpers shared by the examples (not an example itself).

Words and characters become integer ids for :class:`skdl.Embedding`: 0 is
padding (``Embedding(mask_zero=True)`` makes recurrent layers skip it) and 1
an unknown token, so a vocabulary of ``n`` tokens needs
``Embedding(n + 2, ...)`` — :attr:`Vocabulary.size`.
"""
import re

import numpy as np

UNKNOWN = 1  # the id of a token fit did not see; 0 is padding

# A word may hold inner apostrophes and hyphens ("don't", "scikit-learn").
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*|[^\sa-z0-9]")


def words(text):
    """Lower-case words and punctuation marks of ``text``, in order.

    >>> words("Hi, how are you?")
    ['hi', ',', 'how', 'are', 'you', '?']
    """
    return _WORD.findall(text.lower())


def join_words(tokens):
    """The inverse of :func:`words`, up to case and spacing: punctuation is
    attached to the word before it."""
    text = ""
    for token in tokens:
        glue = "" if not text or (len(token) == 1 and token in ".,!?;:") else " "
        text += glue + token
    return text


class Vocabulary:
    """Integer ids of the tokens seen by :meth:`fit`.

    Parameters
    ----------
    reserved : sequence of str, default=()
        Tokens that get the first ids after padding and unknown, seen or not
        (e.g. start and end markers of a decoder).

    Attributes
    ----------
    ids : dict of str to int
        Id of each known token, from 2 on (0 pads, 1 is unknown).
    tokens : list of str
        Token of each id; ``tokens[0]`` and ``tokens[1]`` are ``''`` and
        ``'<unk>'``.
    """

    def __init__(self, reserved=()):
        self.reserved = tuple(reserved)

    def fit(self, sequences):
        """Learn the tokens of ``sequences`` (lists of tokens, or strings for
        a vocabulary of characters); sorted, so the ids do not depend on the
        order of the data."""
        seen = {token for sequence in sequences for token in sequence}
        self.tokens = ["", "<unk>", *self.reserved,
                       *sorted(seen.difference(self.reserved))]
        self.ids = {token: i for i, token in enumerate(self.tokens) if i > UNKNOWN}
        return self

    @property
    def size(self):
        """Number of ids, padding and unknown included: the ``input_dim`` of
        the Embedding that reads them."""
        return len(self.tokens)

    def encode(self, sequence):
        """Ids of the tokens of ``sequence`` (1 for an unknown token)."""
        return [self.ids.get(token, UNKNOWN) for token in sequence]

    def pad(self, sequences, length, align="left"):
        """Ids of each sequence in a row of ``length`` columns, padded with 0.

        Parameters
        ----------
        sequences : list of sequences of tokens
        length : int
            Longer sequences are cut: the end is kept with ``align='right'``,
            the start otherwise.
        align : {'left', 'right'}, default='left'
            Where the tokens sit; 'right' pads in front, so the last
            token is always in the last column.

        Returns
        -------
        X : float32 ndarray of shape (len(sequences), length)
            Ids as the networks' dtype (float64 data would make the sums
            over a batch run in float64, slower and no more useful for ids).
        """
        X = np.zeros((len(sequences), length), dtype=np.float32)
        for row, sequence in enumerate(sequences):
            ids = self.encode(sequence)
            if align == "right":
                ids = ids[-length:]
                X[row, length - len(ids):] = ids
            else:
                ids = ids[:length]
                X[row, :len(ids)] = ids
        return X


def sample(proba, temperature, rng):
    """Index drawn from the distribution ``proba`` at a ``temperature``.

    Parameters
    ----------
    proba : ndarray of shape (n_classes,)
    temperature : float
        0 takes the likeliest index (no randomness); otherwise the
        log-probabilities are divided by it, so below 1 sharpens the
        distribution towards the likeliest and above 1 flattens it.
    rng : numpy.random.RandomState

    Returns
    -------
    int
    """
    if temperature == 0:
        return int(np.argmax(proba))
    logits = np.log(np.maximum(proba, 1e-12)) / temperature
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(p), p=p / p.sum()))
