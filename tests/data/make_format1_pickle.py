"""How tests/data/format1_classifier.pkl was made: a classifier pickled by
skdl in pickle format 1 (before TrainingState; commit b73da2b), and the
weights two more partial_fit calls gave there.

    git worktree add /tmp/old b73da2b
    (cd /tmp/old && python setup.py build_ext --inplace)
    PYTHONPATH=/tmp/old python tests/data/make_format1_pickle.py tests/data/format1_classifier.pkl
"""
import pickle, sys
import numpy as np
from sklearn.datasets import load_digits
import skdl
from skdl import Dense, Dropout, NNClassifier
from skdl.augment import RandomShift
X, y = load_digits(return_X_y=True)
X, y = (X[:300] / 16).astype(np.float32), y[:300]
clf = NNClassifier([Dense(16, activation="relu"), Dropout(0.2)], input_shape=(1, 8, 8),
                   augment=RandomShift(1), batch_size=64, max_iter=3, random_state=0).fit(X, y)
blob = pickle.dumps(clf)
for _ in range(2):
    clf.partial_fit(X, y)
with open(sys.argv[1], "wb") as f:
    pickle.dump({"skdl_version": skdl.__version__, "pickle": blob,
                 "params_after_two_partial_fits": clf.network_.params.copy(),
                 "n_steps_after": clf._n_steps}, f)
print("written; format", pickle.loads(blob).__dict__.get("_skdl_pickle_format"), "steps", clf._n_steps)
