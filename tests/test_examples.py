"""Smoke tests of the scripts in examples/: each runs its main path with tiny
settings and checks what a user would look at. Their accuracy at full
settings is tested elsewhere (test_conv.py, test_recurrent.py)."""
import ast
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import skdl
from _examples import EXAMPLES, load_example

# Tiny settings stop training before it converges, on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_"))
# The smoke test of each script; digits_pathways has had its own since it came.
SMOKE_TESTS = {
    "chatbot": "test_chatbot_example_answers_until_quit",
    "char_lm": "test_char_lm_example_writes_from_its_alphabet",
    "digits_cnn": "test_digits_cnn_example_runs",
    "digits_grid_search": "test_grid_search_example_picks_from_the_grid",
    "digits_pathways": "test_merge.py::test_pathways_example_runs",
    "digits_sequence": "test_digits_sequence_example_runs",
    "tabular_regression": "test_tabular_regression_example_predicts_prices",
    "text_lstm": "test_text_example_runs",
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_is_documented_and_smoke_tested(name):
    tree = ast.parse((EXAMPLES / f"{name}.py").read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert doc and f"python examples/{name}.py" in doc and "print" in doc
    mains = [node for node in tree.body
             if isinstance(node, ast.FunctionDef) and node.name == "main"]
    assert mains and mains[0].args.args, "main() takes the settings a smoke test shrinks"
    assert "__main__" in ast.unparse(tree.body[-1].test)
    test = SMOKE_TESTS[name]
    if "::" not in test:
        assert test in globals()
    else:
        path, test = test.split("::")
        assert f"def {test}(" in (EXAMPLES.parent / "tests" / path).read_text()


def test_digits_cnn_example_runs(capsys):
    accuracy = load_example("digits_cnn").main(max_iter=1)
    assert re.match(r"digits CNN: \d+\.\d\d% hold-out accuracy \(450 images\), 1 epochs",
                    capsys.readouterr().out)
    assert accuracy > 0.5  # one epoch is far better than chance


def test_digits_sequence_example_runs(capsys):
    accuracy = load_example("digits_sequence").main(max_iter=2)
    assert capsys.readouterr().out.startswith("digits as sequences (GRU): ")
    assert 0 <= accuracy <= 1


def test_text_example_runs(capsys):
    lstm, bag = load_example("text_lstm").main(max_iter=1)
    out = capsys.readouterr().out
    assert "Embedding + LSTM:" in out and "bag of words + logistic regression:" in out
    assert 0 <= lstm <= 1 and bag < 0.65  # the corpus defeats a bag of words


def test_grid_search_example_picks_from_the_grid(capsys):
    example = load_example("digits_grid_search")
    grid = {"layers__conv1__filters": [2, 3], "learning_rate": [0.01]}
    search = example.main(grid=grid, max_iter=1, cv=2, n_samples=300)
    out = capsys.readouterr().out
    assert "2 candidates x 2 folds" in out and "rank 1:" in out and "rank 2:" in out
    assert re.search(r"best \{.*\}: \d+\.\d\d% hold-out accuracy \(75 images\)", out)
    filters = search.best_params_["layers__conv1__filters"]
    assert filters in grid["layers__conv1__filters"]
    # The refitted model is built with the chosen filters.
    assert search.best_estimator_.get_weights()["conv1"]["kernel"].shape[0] == filters


def test_tabular_regression_example_predicts_prices(capsys):
    example = load_example("tabular_regression")
    scores, model = example.main(n_samples=200, max_iter=3)
    out = capsys.readouterr().out
    assert set(scores) == {"skdl NNRegressor", "sklearn Ridge", "sklearn MLPRegressor"}
    for name in scores:
        assert re.search(rf"{name}: R² -?\d+\.\d+, mean absolute error", out)
    X, _ = example.make_houses(5, random_state=1)
    X.loc[0, "district"] = "new town"  # a category unseen in training is ignored
    predicted = model.predict(X)
    assert predicted.shape == (5,) and np.isfinite(predicted).all()


def test_char_lm_example_writes_from_its_alphabet(capsys):
    example = load_example("char_lm")
    written = example.main(max_iter=1, window=8, units=8, n_chars=40, n_train_chars=300)
    text = example.load_text()[:300]
    assert len(written) == 40 and set(written) <= set(text)
    assert "In May the " + written in capsys.readouterr().out


def test_char_lm_example_windows_look_back():
    example = load_example("char_lm")
    vocabulary = load_example("_text").Vocabulary().fit(["abc"])
    X, y = example.windows("abcab", vocabulary, 3)
    ids = vocabulary.ids
    assert list(y) == list("abcab")
    assert X.tolist() == [[0, 0, 0], [0, 0, ids["a"]], [0, ids["a"], ids["b"]],
                          [ids["a"], ids["b"], ids["c"]], [ids["b"], ids["c"], ids["a"]]]


def _bot_lines(out):
    return [line[len("bot> "):] for line in out.replace("you> ", "\n").splitlines()
            if line.startswith("bot> ")]


def test_chatbot_example_answers_until_quit(capsys, monkeypatch):
    chatbot = load_example("chatbot")
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello\n\nWhat is skdl?\nquit\nHi\n"))
    bot = chatbot.main(max_iter=2, demo=False)
    out = capsys.readouterr().out
    assert re.match(r"chatbot: \d+ of 111 training answers reproduced", out)
    answers = _bot_lines(out)
    assert len(answers) == 2  # the empty line is skipped, nothing after "quit" is read
    for answer in answers:
        tokens = chatbot.words(answer)
        assert tokens and set(tokens) <= bot.known_words()
    assert sys.stdin.read() == "Hi\n"


def test_chatbot_example_ends_at_end_of_input(capsys, monkeypatch):
    chatbot = load_example("chatbot")
    bot = chatbot.ChatBot(max_iter=1).fit(*chatbot.load_dialogues())
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi"))  # then end of input
    chatbot.chat(bot)
    assert len(_bot_lines(capsys.readouterr().out)) == 1


def test_chatbot_example_runs_as_a_script_without_a_terminal(tmp_path):
    # Run by path, the script imports the shared helpers from its folder; its
    # input is not a terminal, so it answers the demo questions and exits.
    # The child imports the skdl this process tested (the checkout's may be
    # unbuilt, as in CI).
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(Path(skdl.__file__).parents[1]), *sys.path])}
    done = subprocess.run([sys.executable, str(EXAMPLES / "chatbot.py"), "--epochs", "1"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    chatbot = load_example("chatbot")
    assert len(_bot_lines(done.stdout)) == len(chatbot.DEMO_QUESTIONS)
    assert all(_bot_lines(done.stdout))


def test_example_text_helpers():
    text = load_example("_text")
    assert text.words("Does skdl need scikit-learn? No, it doesn't!") == [
        "does", "skdl", "need", "scikit-learn", "?", "no", ",", "it", "doesn't", "!"]
    assert text.join_words(["no", ",", "it", "runs", "."]) == "no, it runs."
    vocabulary = text.Vocabulary(reserved=["<end>"]).fit([["b", "a"], ["a", "c"]])
    assert vocabulary.tokens == ["", "<unk>", "<end>", "a", "b", "c"]
    assert vocabulary.size == 6 and vocabulary.encode(["c", "z"]) == [5, 1]
    sequences = [["a", "b", "c"], ["b"], []]
    assert vocabulary.pad(sequences, 2).tolist() == [[3, 4], [4, 0], [0, 0]]
    assert vocabulary.pad(sequences, 2, align="right").tolist() == [[4, 5], [0, 4], [0, 0]]
    rng = np.random.RandomState(0)
    assert text.sample(np.array([0.2, 0.5, 0.3]), 0, rng) == 1
    draws = [text.sample(np.array([0.2, 0.5, 0.3]), 0.01, rng) for _ in range(20)]
    assert set(draws) == {1}  # a low temperature all but always takes the likeliest
