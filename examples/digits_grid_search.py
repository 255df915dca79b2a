"""A convolutional network on scikit-learn's 8x8 digits, tuned by GridSearchCV.

Run with ``python examples/digits_grid_search.py``: a 3-fold grid search on a
stratified 75% of the images over the first convolution's number of filters
(reached by its name, ``layers__conv1__filters``) and the learning rate,
then a refit of the best on all of that 75%. It prints each candidate's
cross-validated accuracy, the best parameters and the best model's accuracy
on the other 25%.
"""
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from skdl import Conv2D, Dense, Flatten, MaxPool2D, NNClassifier

GRID = {"layers__conv1__filters": [8, 16, 32], "learning_rate": [0.001, 0.003]}


def make_model(max_iter=30, random_state=0):
    """Two named convolutions, pooling and a dense layer, on 1x8x8 images."""
    return NNClassifier(
        layers=[
            Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            MaxPool2D(2),
            Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            MaxPool2D(2),
            Flatten(),
            Dense(64, activation="relu", name="hidden"),
        ],
        input_shape=(1, 8, 8),
        batch_size=32, max_iter=max_iter, random_state=random_state,
    )


def main(grid=GRID, max_iter=30, cv=3, n_samples=None):
    """Search ``grid``, print the table and the hold-out accuracy.

    Parameters
    ----------
    grid : dict, default=GRID
        ``param_grid`` of the search.
    max_iter : int, default=30
        Epochs of every fit (the search compares equal budgets).
    cv : int, default=3
    n_samples : int or None, default=None
        Use only the first ``n_samples`` images (None: all 1,797).

    Returns
    -------
    GridSearchCV
        Fitted.
    """
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X[:n_samples] / 16, y[:n_samples], test_size=0.25, stratify=y[:n_samples],
        random_state=0)
    search = GridSearchCV(make_model(max_iter), grid, cv=cv)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # A fixed, short budget for every candidate: not converging is expected.
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    results = search.cv_results_
    print(f"{len(results['params'])} candidates x {cv} folds, up to {max_iter} epochs each:")
    for i in results["rank_test_score"].argsort():
        print(f"  rank {results['rank_test_score'][i]}: {results['params'][i]} "
              f"{results['mean_test_score'][i]:.2%} +/- {results['std_test_score'][i]:.2%} "
              f"cross-validated ({results['mean_fit_time'][i]:.1f} s per fit)")
    print(f"best {search.best_params_}: {search.score(X_test, y_test):.2%} hold-out "
          f"accuracy ({len(y_test)} images); search and refit in {seconds:.0f} s")
    return search


if __name__ == "__main__":
    main()
