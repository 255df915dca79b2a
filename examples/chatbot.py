"""A toy chatbot: a sequence-to-sequence model with an encoder and a decoder LSTM.

Run with ``python examples/chatbot.py``: it trains on the bundled dialogues
(examples/data/dialogues.tsv, 111 hand-written question and answer pairs,
BSD-3-Clause), prints how many of their answers it reproduces and the training
time, then chats in the terminal (``you>``) until you type "quit" or end the
input (Ctrl-D). With ``--demo``, or when the input is not a terminal, it
answers a few fixed questions instead and exits. It uses no network, loads
no pickles and serves nothing.

The model is one :class:`skdl.NNClassifier` with two inputs, the question
and the answer so far. The encoder (``Embedding`` + ``LSTM``) reads the
question and outputs its final state, ``h`` and ``c`` side by side
(``return_state=True``); the decoder, a second ``Embedding`` + ``LSTM`` on
the side input ``"answer"`` (a :class:`skdl.MergeInput`), starts from that
state (``initial_state="encoder"``: the "inject" form of Sutskever et al.,
2014) and reads the answer written so far, from a ``<start>`` token. The
encoder's state also joins the decoder's output before a dense layer and
the softmax predict the next word of the answer, or ``<end>`` (the "merge"
form; Tanti, Gatt and Camilleri, 2018, compare the two). Training is
teacher forcing: one sample per word of each answer, with the true words
before it as the decoder's input; the decoder's gradient for its initial
state trains the encoder too. Answering is greedy (or sampled, with a
temperature) decoding, one word at a time.

A toy: it knows its 111 dialogues by heart, and a question worded otherwise
often gets the answer of a similar question, or a mix of two.
"""
import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from _text import Vocabulary, join_words, sample, words
from skdl import LSTM, Dense, Embedding, MergeInput, NNClassifier

DATA = Path(__file__).with_name("data") / "dialogues.tsv"
START, END = "<start>", "<end>"
DEMO_QUESTIONS = ["Hello", "What is your name?", "Does skdl need a GPU?",
                  "What is an LSTM?", "Tell me a joke", "Thanks", "Bye"]


def load_dialogues():
    """(questions, answers): the bundled pairs, as lists of strings."""
    with open(DATA, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [r["question"] for r in rows], [r["answer"] for r in rows]


def make_model(vocabulary_size, question_length, answer_length, units=64,
               max_iter=100, random_state=0):
    """The encoder/decoder network, as a classifier of the next answer word.

    Parameters
    ----------
    vocabulary_size : int
        ``input_dim`` of both embeddings (ids 0 and 1 are padding and
        unknown).
    question_length, answer_length : int
        Token columns of the two inputs: the longest question, and the
        longest answer plus the ``<start>`` token.
    units : int, default=64
        Width of the LSTMs and of the dense layer.
    max_iter : int, default=100
    random_state : int, default=0

    Returns
    -------
    NNClassifier
        Takes ``{"question": ids, "answer": ids}``, padded with 0 at the end.
    """
    return NNClassifier(
        layers=[
            Embedding(vocabulary_size, 32, mask_zero=True, name="encoder_embedding"),
            # The encoder's last h and c, side by side: the decoder's initial state.
            LSTM(units, return_state=True, name="encoder"),
            MergeInput("answer", name="decoder_state", layers=[
                Embedding(vocabulary_size, 32, mask_zero=True, name="decoder_embedding"),
                LSTM(units, initial_state="encoder", name="decoder"),
            ]),
            Dense(units, activation="relu", name="hidden"),
        ],
        input_shape={"question": (question_length,), "answer": (answer_length,)},
        learning_rate=0.01, batch_size=32, max_iter=max_iter, random_state=random_state,
    )


class ChatBot:
    """Answers questions like those it was trained on, word by word.

    Parameters
    ----------
    max_iter : int, default=100
        Training epochs at most.
    random_state : int, default=0
        Seeds the network and the sampling of :meth:`reply`.
    """

    def __init__(self, max_iter=100, random_state=0):
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, questions, answers):
        """Train on pairs of strings.

        Every answer of n words gives n + 1 samples: the question, the
        ``<start>`` token and the answer's first k words, and as the target
        word the (k + 1)-th, or ``<end>`` after the last.
        """
        questions = [words(q) for q in questions]
        answers = [words(a) for a in answers]
        self.vocabulary = Vocabulary(reserved=(START, END)).fit(questions + answers)
        self.question_length = max(map(len, questions))
        self.answer_length = max(map(len, answers)) + 1
        asked, written, following = [], [], []
        for question, answer in zip(questions, answers):
            answer = [START, *answer, END]
            for k in range(1, len(answer)):
                asked.append(question)
                written.append(answer[:k])
                following.append(answer[k])
        self.model = make_model(self.vocabulary.size, self.question_length,
                                self.answer_length, max_iter=self.max_iter,
                                random_state=self.random_state)
        self.model.fit(self._inputs(asked, written), np.array(following))
        self._rng = np.random.RandomState(self.random_state)
        return self

    def _inputs(self, questions, prefixes):
        return {"question": self.vocabulary.pad(questions, self.question_length),
                "answer": self.vocabulary.pad(prefixes, self.answer_length)}

    def reply(self, question, temperature=0.0):
        """The answer to ``question``, as a string (see :meth:`replies`)."""
        return self.replies([question], temperature)[0]

    def replies(self, questions, temperature=0.0):
        """The answers to ``questions``, written side by side, one word of
        every unfinished answer per step.

        Parameters
        ----------
        questions : list of str
            Words not seen in training count as unknown; words beyond the
            longest training question are left out.
        temperature : float, default=0.0
            0 takes the likeliest word each time (greedy decoding); above 0,
            words are drawn from the predicted distribution sharpened
            (below 1) or flattened (above 1) by it.

        Returns
        -------
        list of str
            Each of at least one word: ``<end>`` is not allowed first, as no
            answer in the data is empty.
        """
        classes = self.model.classes_
        asked = [words(q) for q in questions]
        written = [[START] for _ in questions]
        unfinished = list(range(len(questions)))
        for step in range(1, self.answer_length):
            if not unfinished:
                break
            proba = self.model.predict_proba(self._inputs(
                [asked[i] for i in unfinished], [written[i] for i in unfinished]))
            if step == 1:
                proba[:, classes == END] = 0.0
            for i, p in zip(list(unfinished), proba):
                word = str(classes[sample(p, temperature, self._rng)])
                if word == END:
                    unfinished.remove(i)
                else:
                    written[i].append(word)
        return [join_words(answer[1:]) for answer in written]

    def known_words(self):
        """The words an answer can be made of."""
        return {str(c) for c in self.model.classes_} - {END}


def chat(bot, questions=None):
    """Answer ``questions`` (printed as if typed), or those typed at ``you>``
    until "quit", "exit" or the end of the input."""
    if questions is not None:
        for question in questions:
            print(f"you> {question}")
            print(f"bot> {bot.reply(question)}")
        return
    while True:
        try:
            question = input("you> ")
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C: a normal way out
            print()
            return
        if question.strip().lower() in ("quit", "exit"):
            return
        if question.strip():
            print(f"bot> {bot.reply(question)}")


def main(max_iter=100, demo=None, random_state=0):
    """Train the bot, then chat (``demo=False``), answer :data:`DEMO_QUESTIONS`
    (``demo=True``), or chat only if the input is a terminal (None)."""
    questions, answers = load_dialogues()
    start = time.perf_counter()
    bot = ChatBot(max_iter=max_iter, random_state=random_state).fit(questions, answers)
    seconds = time.perf_counter() - start
    exact = sum(reply == join_words(words(answer))
                for reply, answer in zip(bot.replies(questions), answers))
    print(f"chatbot: {exact} of {len(questions)} training answers reproduced word "
          f"for word, {bot.model.n_iter_} epochs in {seconds:.1f} s")
    if demo is None:
        demo = not sys.stdin.isatty()
    chat(bot, DEMO_QUESTIONS if demo else None)
    return bot


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true",
                        help="answer a few fixed questions instead of chatting")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs at most")
    args = parser.parse_args()
    main(max_iter=args.epochs, demo=args.demo or None)
