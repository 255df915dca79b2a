"""A convolutional network on scikit-learn's 8x8 digits.

Run with ``python examples/digits_cnn.py``: trains on a stratified 75% of the
images and prints the accuracy on the other 25%.
"""
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdl import Conv2D, Dense, Dropout, Flatten, MaxPool2D, NNClassifier


def make_model(random_state=0, max_iter=150):
    """Two 3x3 convolution blocks and a dense layer, on 1x8x8 images."""
    return NNClassifier(
        layers=[
            Conv2D(32, 3, padding="same", activation="relu"),
            Conv2D(32, 3, padding="same", activation="relu"),
            MaxPool2D(2),
            Conv2D(64, 3, padding="same", activation="relu"),
            MaxPool2D(2),
            Flatten(),
            Dropout(0.4),
            Dense(128, activation="relu"),
            Dropout(0.4),
        ],
        input_shape=(1, 8, 8),  # flat rows of 64 pixels -> one-channel images
        batch_size=32, max_iter=max_iter, n_iter_no_change=20, random_state=random_state,
    )


def main(max_iter=150):
    """Train, print and return the hold-out accuracy."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16, y, test_size=0.25, stratify=y, random_state=0)
    model = make_model(max_iter=max_iter)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    print(f"digits CNN: {accuracy:.2%} hold-out accuracy "
          f"({len(y_test)} images), {model.n_iter_} epochs in "
          f"{time.perf_counter() - start:.1f} s")
    return accuracy


if __name__ == "__main__":
    main()
