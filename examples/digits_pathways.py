"""A pydnn-style network: parallel pathways, a side input and augmentation,
inside a scikit-learn Pipeline with a grid search over a named layer.

pydnn's motivating case: images are resized to the network's input size,
which loses their original size, so that size is fed to the network as a
side input merged after the convolutions. Here every digit is cropped to its
bounding box and stretched back to 8x8 (the stretched digits of "1" and "7"
look alike); the box's height and width are the side input.

Run with ``python examples/digits_pathways.py``: prints the network's
summary, the grid search's scores with and without the side input's own
layer widths, the hold-out accuracy, and the mistakes.
"""
import time

import numpy as np
from scipy.ndimage import zoom
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skdl import (
    Conv2D,
    ConvBlock2D,
    Flatten,
    HiddenBlock,
    MergeInput,
    NNClassifier,
    Pathways,
)
from skdl.augment import RandomShift
from skdl.inspection import mistakes


def stretched_digits():
    """Digits cropped to their ink's bounding box and stretched back to 8x8.

    Returns
    -------
    X : ndarray of shape (n, 66)
        64 pixels (0-16), then the box's height and width in pixels.
    y : ndarray of shape (n,)
    """
    images, y = load_digits(return_X_y=True)
    images = images.reshape(-1, 8, 8)
    rows = []
    for image in images:
        ys, xs = np.nonzero(image)
        box = image[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        height, width = box.shape
        stretched = zoom(box, (8 / height, 8 / width), order=1, grid_mode=True,
                         mode="nearest")
        rows.append(np.r_[stretched.ravel(), height, width])
    return np.asarray(rows), y


def divide_by_16(X):
    """Pixel values 0-16 to 0-1 (a named function: pipelines stay picklable)."""
    return X / 16


def make_pipeline(max_iter=60, random_state=0):
    """Pixels and box size prepared apart, then one network with two inputs."""
    prepare = ColumnTransformer([
        ("pixels", FunctionTransformer(divide_by_16), slice(0, 64)),
        ("size", StandardScaler(), slice(64, 66)),
    ])
    network = NNClassifier(
        layers=[
            ConvBlock2D(16, batch_norm=True, pool=None, name="stem"),
            # An inception-like split: 1x1 and 3x3 pathways, concatenated.
            Pathways([[Conv2D(16, 1, activation="relu", name="narrow")],
                      [Conv2D(16, 3, padding="same", activation="relu", name="wide")]],
                     name="inception"),
            ConvBlock2D(32, name="block"),
            Flatten(),
            # pydnn's merge_data_channel: the box size joins after the convolutions.
            MergeInput("size", layers=[HiddenBlock(8, name="size_features")]),
            HiddenBlock(64, dropout=0.3, name="hidden"),
        ],
        input_shape={"pixels": (1, 8, 8), "size": (2,)},
        augment=RandomShift(1),
        learning_rate=0.003, batch_size=64, max_iter=max_iter, early_stopping=True,
        n_iter_no_change=8, random_state=random_state,
    )
    return Pipeline([("prepare", prepare), ("network", network)])


def main(max_iter=60, grid=((8, 32),)):
    X, y = stretched_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    pipe = make_pipeline(max_iter=max_iter)
    print(pipe.named_steps["network"].summary(n_samples=len(X_train), n_outputs=10))
    search = GridSearchCV(pipe, {"network__layers__wide__filters": list(grid[0])}, cv=3)
    start = time.perf_counter()
    search.fit(X_train, y_train)
    for params, score in zip(search.cv_results_["params"],
                             search.cv_results_["mean_test_score"]):
        print(f"{params}: {score:.2%} cross-validated")
    best = search.best_estimator_
    print(f"best {search.best_params_}: {best.score(X_test, y_test):.2%} hold-out "
          f"accuracy (search and refit in {time.perf_counter() - start:.0f} s)")
    found = mistakes(best, X_test, y_test)
    print("confusion matrix (rows: true digit, columns: predicted):")
    print(found.confusion_matrix)
    print("first mistakes (index: true -> predicted):",
          ", ".join(f"{i}: {a} -> {p}" for i, a, p in
                    zip(found.indices[:10], found.actual, found.predicted)))
    return best, best.score(X_test, y_test)


if __name__ == "__main__":
    main()
