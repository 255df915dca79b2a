"""How tests/data/format1_classifier.pkl was made: two classifiers pickled by
skdl in pickle format 1 (before TrainingState and the layers' checked
windows; commit b73da2b), with what they predicted there and the weights two
more partial_fit calls gave there.

    git worktree add /tmp/old b73da2b
    (cd /tmp/old && python setup.py build_ext --inplace)
    PYTHONPATH=/tmp/old python tests/data/make_format1_pickle.py tests/data/format1_classifier.pkl
"""
import pickle
import sys

import numpy as np
from sklearn.datasets import load_digits

import skdl
from skdl import AvgPool2D, Conv2D, Dense, Dropout, GlobalMaxPool2D, MaxPool2D, NNClassifier
from skdl.augment import RandomShift


def data():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16).astype(np.float32), y[:300]


MODELS = {
    "dense": lambda: NNClassifier([Dense(16, activation="relu"), Dropout(0.2)],
                                  input_shape=(1, 8, 8), augment=RandomShift(1),
                                  batch_size=64, max_iter=3, random_state=0),
    "cnn": lambda: NNClassifier([Conv2D(4, 3, padding="same", activation="relu"),
                                 MaxPool2D(2), Conv2D(4, 2, strides=1, dilation=1),
                                 AvgPool2D(2, strides=1, padding="same"),
                                 GlobalMaxPool2D()],
                                input_shape=(1, 8, 8), batch_size=64, max_iter=3,
                                random_state=0),
}


def main(path):
    X, y = data()
    fixture = {"skdl_version": skdl.__version__}
    for name, make in MODELS.items():
        clf = make().fit(X, y)
        blob = pickle.dumps(clf)
        proba = clf.predict_proba(X)
        for _ in range(2):
            clf.partial_fit(X, y)
        fixture[name] = {"pickle": blob, "predict_proba": proba,
                         "params_after_two_partial_fits": clf.network_.params.copy(),
                         "n_steps_after": clf._n_steps}
    with open(path, "wb") as file:
        pickle.dump(fixture, file)


if __name__ == "__main__":
    main(sys.argv[1])
