"""Regression on a table of numeric and categorical columns, in a Pipeline.

Run with ``python examples/tabular_regression.py``: it generates a table of
house sales (a pandas DataFrame; the data is synthetic, so nothing is
downloaded), prepares its columns with a ``ColumnTransformer``
(``StandardScaler`` on the numbers, ``OneHotEncoder`` on the categories) and
fits an ``NNRegressor`` behind it, and the same preparation with scikit-learn's
``Ridge`` and ``MLPRegressor``. It prints each model's R² and mean absolute
error on a held-out quarter.

The price depends on the district through the price of a square metre, so
area and district interact: a linear model cannot express that, a network
can. The target is standardized for the networks by
``TransformedTargetRegressor``: prices in thousands would make the first
epochs chase the scale.
"""
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skdl import Dense, NNRegressor

NUMERIC = ["area", "rooms", "age", "distance"]
CATEGORICAL = ["district", "heating"]
# Price of a square metre (thousands) by district.
DISTRICTS = {"centre": 6.0, "river": 4.5, "hills": 4.0, "suburb": 2.5, "industrial": 1.8}
HEATING = {"heat pump": 15.0, "gas": 5.0, "oil": -10.0}


def make_houses(n_samples=3000, random_state=0):
    """A synthetic table of house sales.

    Parameters
    ----------
    n_samples : int, default=3000
    random_state : int, default=0

    Returns
    -------
    X : DataFrame of shape (n_samples, 6)
        ``area`` (m²), ``rooms``, ``age`` (years), ``distance`` (km to the
        centre), ``district`` and ``heating`` (strings).
    y : ndarray of shape (n_samples,)
        Price in thousands: area times the district's price per m², less
        for age (more so for old houses) and distance, more for a good
        heating, with 5% noise.
    """
    rng = np.random.RandomState(random_state)
    district = rng.choice(list(DISTRICTS), n_samples)
    heating = rng.choice(list(HEATING), n_samples, p=[0.3, 0.5, 0.2])
    area = rng.gamma(9.0, 12.0, n_samples).round() + 20
    rooms = np.clip(np.round(area / 25 + rng.normal(0, 0.7, n_samples)), 1, None)
    age = rng.uniform(0, 100, n_samples).round()
    distance = rng.exponential(6.0, n_samples).round(1)
    per_m2 = np.array([DISTRICTS[d] for d in district])
    price = (area * per_m2 * (1 - 0.3 * (age / 100) ** 2) * np.exp(-distance / 40)
             + 8 * rooms + np.array([HEATING[h] for h in heating]))
    price *= rng.lognormal(0, 0.05, n_samples)
    X = pd.DataFrame({"area": area, "rooms": rooms, "age": age, "distance": distance,
                      "district": district, "heating": heating})
    return X, price.round(1)


def prepare():
    """Numbers standardized, categories one-hot encoded."""
    return ColumnTransformer([
        ("numbers", StandardScaler(), NUMERIC),
        ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])


def make_model(max_iter=300, random_state=0):
    """The skdl pipeline: columns prepared, then a two-layer network on a
    standardized target."""
    network = NNRegressor([Dense(64, activation="relu"), Dense(32, activation="relu")],
                          learning_rate=0.003, batch_size=64, max_iter=max_iter,
                          early_stopping=True, n_iter_no_change=20,
                          random_state=random_state)
    return make_pipeline(prepare(), TransformedTargetRegressor(network,
                                                               transformer=StandardScaler()))


def baselines(max_iter=300, random_state=0):
    """scikit-learn's models behind the same preparation."""
    mlp = MLPRegressor(hidden_layer_sizes=(64, 32), learning_rate_init=0.003, batch_size=64,
                       max_iter=max_iter, early_stopping=True, n_iter_no_change=20,
                       random_state=random_state)
    return {
        "sklearn Ridge": make_pipeline(prepare(), Ridge(alpha=1.0)),
        "sklearn MLPRegressor": make_pipeline(
            prepare(), TransformedTargetRegressor(mlp, transformer=StandardScaler())),
    }


def main(n_samples=3000, max_iter=300, random_state=0):
    """Fit and compare the models; print and return their hold-out scores.

    Returns
    -------
    scores : dict of str to (float, float)
        R² and mean absolute error by model name.
    model : Pipeline
        The fitted skdl pipeline.
    """
    X, y = make_houses(n_samples, random_state)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25,
                                                        random_state=random_state)
    models = {"skdl NNRegressor": make_model(max_iter, random_state),
              **baselines(max_iter, random_state)}
    print(f"{len(y)} synthetic house sales, prices average {y.mean():.0f} thousand; "
          f"scores on {len(y_test)} held out:")
    scores = {}
    for name, model in models.items():
        start = time.perf_counter()
        predicted = model.fit(X_train, y_train).predict(X_test)
        scores[name] = r2_score(y_test, predicted), mean_absolute_error(y_test, predicted)
        print(f"{name}: R² {scores[name][0]:.3f}, mean absolute error "
              f"{scores[name][1]:.1f} thousand, fitted in "
              f"{time.perf_counter() - start:.1f} s")
    return scores, models["skdl NNRegressor"]


if __name__ == "__main__":
    main()
