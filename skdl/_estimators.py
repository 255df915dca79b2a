"""NNClassifier and NNRegressor: the scikit-learn face of skdl."""
import copy
import math
import time
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from scipy.sparse import issparse
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    clone,
)
from sklearn.preprocessing import LabelBinarizer
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _ops
from ._losses import (
    RegressionLoss,
    SigmoidCrossEntropy,
    SigmoidHellinger,
    SoftmaxCrossEntropy,
    SoftmaxHellinger,
)
from ._network import Network, build_layers, layer_names
from ._optimizers import OPTIMIZERS, Optimizer, resolve_optimizer
from ._summary import summarize
from ._training import (
    SCALE_ADVICE,
    CallbackSupportMixin,
    SklearnCallbacks,
    TrainingRun,
    TrainingState,
    too_large_features,
    validation_split,
)
from ._version import __version__
from .augment import Augmenter, check_augment
from .callbacks import call, check_callbacks
from .schedules import SCHEDULES, LearningRateSchedule, resolve_schedule
from .layers import Dense, Flatten
from .layers._base import cached_param_names, walk_layers
from .layers.merge import replace_spec
from .layers.core import DenseLayer, resolve_shape

# Samples per forward pass at prediction time: bounds memory whatever n_samples.
PREDICT_CHUNK_ROWS = 4096
# And values per layer output in a chunk, so the activations of a chunk stay in
# the core's caches instead of streaming through memory: a 2-block Transformer
# encoder on 64 x 64 sequences (8192 values per sample in its feed-forward
# layer) predicts about 1.5x faster in chunks of 128 samples than of 1024.
PREDICT_CHUNK_VALUES = 2**20
# Layout of a pickled estimator's state. Raise it when an older skdl could no
# longer read what this one writes; loading a newer one is then refused.
# 2: the training state in one TrainingState (format 1 pickles still load).
PICKLE_FORMAT = 2
# batch_size='auto': min(AUTO_BATCH_SIZE, n_samples).
AUTO_BATCH_SIZE = 256


def predict_chunk_size(network):
    """Samples per forward pass at prediction time: ``PREDICT_CHUNK_ROWS``, or
    fewer when the largest layer output of a chunk would hold more than
    ``PREDICT_CHUNK_VALUES`` values (at least one sample).

    Parameters
    ----------
    network : skdl._network.Network

    Returns
    -------
    int
    """
    largest = max([math.prod(network.input_shape)]
                  + [math.prod(layer.output_shape) for layer in network.all_layers])
    return max(1, min(PREDICT_CHUNK_ROWS, PREDICT_CHUNK_VALUES // max(largest, 1)))


class BaseNN(CallbackSupportMixin, BaseEstimator, metaclass=ABCMeta):
    """Shared machinery of :class:`NNClassifier` and :class:`NNRegressor`."""

    _parameter_constraints: dict = {
        "layers": [list, tuple, None],
        "input_shape": [tuple, list, dict, None],
        "optimizer": [StrOptions(set(OPTIMIZERS)), Optimizer],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions(set(SCHEDULES)), LearningRateSchedule, None],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "l1": [Interval(Real, 0, None, closed="left")],
        "l2": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "final_epochs": [Interval(Integral, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "dtype": [StrOptions({"float32", "float64"})],
        "callbacks": [list, tuple, None],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "augment": [Augmenter, list, tuple, None],
    }

    @abstractmethod
    def __init__(self, layers=None, *, input_shape=None, optimizer="adam",
                 learning_rate=0.001, lr_schedule=None, batch_size="auto",
                 max_iter=200, l1=0.0, l2=0.0, early_stopping=False,
                 validation_fraction=0.1, tol=1e-4, n_iter_no_change=10,
                 final_epochs=0, shuffle=True, random_state=None, dtype="float32",
                 callbacks=None, verbose=0, warm_start=False, augment=None):
        self.layers = layers
        self.input_shape = input_shape
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.l1 = l1
        self.l2 = l2
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.final_epochs = final_epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.callbacks = callbacks
        self.verbose = verbose
        self.warm_start = warm_start
        self.augment = augment

    @classmethod
    def _get_param_names(cls):
        return cached_param_names(cls)

    # -- layer hyper-parameters by name -------------------------------------
    def get_params(self, deep=True):
        """Parameters of the estimator; with ``deep``, also of every layer by name.

        Each layer spec, nested ones included, appears as ``layers__<name>``
        and its hyper-parameters as ``layers__<name>__<parameter>``, where
        ``<name>`` is the layer's ``name`` or the one generated for it
        (``dense``, ``dense_1``, ``conv2d``...), as in ``get_weights``.

        Parameters
        ----------
        deep : bool, default=True

        Returns
        -------
        dict
        """
        params = super().get_params(deep=deep)
        if deep and isinstance(self.layers, (list, tuple)):
            for name, spec in layer_names(self.layers).items():
                params[f"layers__{name}"] = spec
                for key, value in spec.get_params(deep=True).items():
                    params[f"layers__{name}__{key}"] = value
        return params

    def set_params(self, **params):
        """Set parameters, layer hyper-parameters by name included.

        ``set_params(layers__conv1__filters=32)`` sets ``filters`` of the
        layer named ``conv1`` (see :meth:`get_params`), wherever it is nested;
        ``set_params(layers__conv1=Conv2D(32, 3))`` replaces that layer.
        ``GridSearchCV`` searches them like any other parameter.

        Parameters
        ----------
        **params : dict

        Returns
        -------
        self
        """
        by_layer = {key: params.pop(key) for key in list(params)
                    if key.startswith("layers__")}
        super().set_params(**params)
        for key, value in by_layer.items():
            self._set_layer_param(key, value)
        return self

    def _set_layer_param(self, key, value):
        named = layer_names(self.layers) if isinstance(self.layers, (list, tuple)) else {}
        path = key[len("layers__"):]
        # The longest name that fits: names may contain "__" themselves.
        for name in sorted(named, key=len, reverse=True):
            if path == name or path.startswith(name + "__"):
                break
        else:
            raise ValueError(
                f"Invalid parameter {key!r} for estimator {type(self).__name__}: no "
                f"layer is named {path.split('__')[0]!r}; the layers are "
                f"{list(named)}."
            )
        spec = named[name]
        if path == name:
            self.layers = replace_spec(self.layers, spec, value)
        else:
            spec.set_params(**{path[len(name) + 2:]: value})

    # -- hooks for the subclasses ------------------------------------------
    @abstractmethod
    def _validate_targets(self, y, first, classes=None):
        """Encode y as the (n, n_outputs) training target; set up the loss."""

    # -- input --------------------------------------------------------------
    def _validate_input(self, X, y="no_validation", reset=True):
        # Sparse X comes as CSR (rows slice cheaply into batches); whether the
        # network can take it is checked by _check_sparse_input.
        kwargs = dict(reset=reset, dtype=(np.float64, np.float32), allow_nd=True,
                      accept_sparse="csr")
        if isinstance(y, str) and y == "no_validation":
            return validate_data(self, X, **kwargs), None
        return validate_data(self, X, y, multi_output=True,
                             y_numeric=not isinstance(self, ClassifierMixin), **kwargs)

    def _input_shapes(self):
        """A dict ``input_shape`` validated: {name: shape}, the main input first."""
        shapes = self.input_shape
        if not shapes:
            raise ValueError("input_shape is an empty dict; it must name the inputs.")
        checked = {}
        for name, shape in shapes.items():
            if not isinstance(name, str):
                raise TypeError(f"input_shape's keys must be input names (str), got "
                                f"{name!r}.")
            try:
                shape = tuple(shape)
            except TypeError:
                shape = None
            if not shape or not all(isinstance(d, Integral) and not isinstance(d, bool)
                                    and d > 0 for d in shape):
                raise ValueError(
                    f"input_shape[{name!r}] must be a non-empty tuple of positive "
                    f"ints, got {shapes[name]!r}."
                )
            checked[name] = tuple(int(d) for d in shape)
        return checked

    def _main_input_shape(self):
        """Shape of one sample of the (main) input the network takes."""
        if isinstance(self.input_shape_, dict):
            return next(iter(self.input_shape_.values()))
        return self.input_shape_

    def _flatten_inputs(self, X):
        """A dict X of arrays by input name, as one flat array: each input's
        samples flattened, side by side in the order of ``input_shape``."""
        if not isinstance(X, dict) or issparse(X):  # a dok sparse matrix is a dict
            return X
        if not isinstance(self.input_shape, dict):
            raise ValueError(
                "X is a dict of arrays by input name, but input_shape is not a dict "
                "of the inputs' shapes; set e.g. input_shape={'image': (1, 8, 8), "
                "'size': (2,)}."
            )
        shapes = self._input_shapes()
        if set(X) != set(shapes):
            raise ValueError(
                f"X has the inputs {sorted(X)}, but input_shape declares "
                f"{list(shapes)}."
            )
        columns = []
        for name, shape in shapes.items():
            values = np.asarray(X[name])
            if values.ndim < 1 or values[:1].size != int(np.prod(shape)):
                raise ValueError(
                    f"X[{name!r}] has shape {values.shape}; its samples must have "
                    f"shape {shape} ({int(np.prod(shape))} values each)."
                )
            columns.append(values.reshape(values.shape[0], -1))
        rows = {c.shape[0] for c in columns}
        if len(rows) > 1:
            raise ValueError(
                f"The inputs in X have different numbers of samples: "
                f"{ {name: c.shape[0] for name, c in zip(shapes, columns)} }."
            )
        return np.concatenate(columns, axis=1)

    def _sample_shape(self, X):
        """Per-sample shape the network takes, from ``input_shape`` and X
        (a dict of shapes by input name for a network with side inputs)."""
        if isinstance(self.input_shape, dict):
            shapes = self._input_shapes()
            size = sum(int(np.prod(shape)) for shape in shapes.values())
            if X.ndim != 2 or X.shape[1] != size:
                raise ValueError(
                    f"X has shape {X.shape}, but input_shape declares inputs "
                    f"{shapes} that take {size} features per sample side by side "
                    "(or pass X as a dict of arrays by input name)."
                )
            return shapes
        if X.ndim > 2:
            shape = X.shape[1:]
            if self.input_shape is not None:
                expected = resolve_shape(self.input_shape, int(np.prod(shape)),
                                         what="input_shape")
                if expected != shape:
                    raise ValueError(
                        f"X has samples of shape {shape}, but input_shape is "
                        f"{tuple(self.input_shape)}."
                    )
            return shape
        if self.input_shape is None:
            return (X.shape[1],)
        return resolve_shape(self.input_shape, X.shape[1], what="input_shape")

    def _network_input(self, X):
        """X reshaped to (n, *input_shape_) in the compute dtype (never in place)."""
        dtype = np.dtype(self.dtype)
        with np.errstate(over="ignore"):  # reported just below, in words
            Xc = X.astype(dtype, copy=False)
        if issparse(Xc):  # flat samples only (see _check_sparse_input)
            if Xc is not X and not np.isfinite(Xc.data).all():
                raise ValueError(
                    f"X has values too large for {dtype} (the estimator's dtype); "
                    "rescale the features or use dtype='float64'."
                )
            return Xc
        if Xc is not X and not np.isfinite(Xc).all():
            raise ValueError(
                f"X has values too large for {dtype} (the estimator's dtype); "
                "rescale the features or use dtype='float64'."
            )
        if isinstance(self.input_shape_, dict):  # the network splits the inputs
            return Xc
        return Xc.reshape((X.shape[0],) + self.input_shape_)

    # -- network ------------------------------------------------------------
    def _build_network(self, n_outputs, random_state=None, initialize=True):
        """The network for ``layers`` on ``input_shape_`` with ``n_outputs``
        output units, its weights drawn from ``random_state`` (default: the
        fit's) unless ``initialize`` is False: then they are zeros whose pages
        are not touched until written (a loaded model's weights go there)."""
        dtype = np.dtype(self.dtype)
        hidden_specs = [Dense(100, activation="relu")] if self.layers is None else list(self.layers)
        shapes = self.input_shape_ if isinstance(self.input_shape_, dict) else None
        main = self._main_input_shape()
        side = None if shapes is None else dict(list(shapes.items())[1:])
        hidden = build_layers(hidden_specs, main, dtype, side_inputs=side)
        shape = hidden[-1].output_shape if hidden else main
        taken = [layer.name for layer in walk_layers(hidden)]
        head = ([Flatten(name="output_flatten")] if len(shape) > 1 else [])
        head.append(Dense(n_outputs, name="output"))
        layers = hidden + build_layers(head, shape, dtype, taken_names=taken)
        network = Network(layers, dtype, input_shapes=shapes)
        if initialize:
            network.initialize(self._training_state.random_state if random_state is None
                               else random_state)
        return network

    def _warn_if_layers_end_in_an_output_layer(self, n_outputs):
        """Warn when the last hidden layer looks like an output layer: a
        softmax or sigmoid with as many units as outputs (or classes), as
        NumpyDL's and Keras' models end. skdl adds its own output layer after
        it, which turns that one into a bottleneck (a digits net scored 0.41
        instead of 0.87)."""
        layers = self.network_.layers
        if len(layers) < 2:
            return
        last_hidden = layers[-2]  # layers[-1] is the output layer
        *_, last = walk_layers([last_hidden])  # a block's last part
        activation = getattr(last, "activation", None)
        sizes = {n_outputs, len(getattr(self, "classes_", ()))}
        shape = last_hidden.output_shape
        if (activation in ("softmax", "sigmoid") and len(shape) == 1
                and shape == last.output_shape and shape[0] in sizes):
            warnings.warn(
                f"The last layer of layers, {last.name!r}, has a {activation} over "
                f"{shape[0]} unit{'s' * (shape[0] != 1)}, like an output layer; skdl adds the output layer "
                "itself (a Dense with the loss's own activation), so this one "
                f"squeezes the features through a {activation} before it. Remove it "
                "from layers, or give it another activation if it is meant as a "
                "hidden layer.",
                UserWarning,
            )

    def _outputs(self, X):
        """Raw network outputs (n, n_outputs) for validated X.

        Converted and run in chunks, so memory does not grow with n_samples.
        """
        return self._forward_in_chunks(X, convert=True)

    def _forward_in_chunks(self, X, convert=False, layer=None):
        """Network outputs of X, or those of the layer named ``layer``, a
        chunk of samples at a time (see :func:`predict_chunk_size`);
        ``convert`` casts and reshapes each chunk from the validated input
        first."""
        network = self.network_
        shape = network.output_shape if layer is None else network.find_layer(
            layer).output_shape
        out = np.empty((X.shape[0],) + shape, dtype=self.dtype)
        size = predict_chunk_size(network)
        for start in range(0, X.shape[0], size):
            chunk = X[start:start + size]
            if convert:
                chunk = self._network_input(chunk)
            out[start:start + size] = (
                network.forward(chunk) if layer is None
                else network.layer_output(chunk, layer))
        return out

    def _to_fitted_layout(self, X):
        """X in the layout the model was fitted on: flat rows of features or
        samples of shape ``input_shape_``, whichever it was given.

        A model with a multi-dimensional ``input_shape_`` takes both layouts
        (they are told apart by the number of axes, so the choice is never
        ambiguous); an X of neither gets an error naming both. Runs before
        ``validate_data``, whose message would count only X's second axis.
        """
        sample_shape = self.input_shape_
        several = isinstance(sample_shape, dict)
        if not several and len(sample_shape) == 1:
            return X  # flat samples: scikit-learn's own checks and messages
        shape = getattr(X, "shape", None)
        if shape is None and isinstance(X, (list, tuple)):
            try:  # what validate_data would make of it; leave its errors to it
                X = np.asarray(X)
                shape = X.shape
            except (TypeError, ValueError):
                return X
        if shape is None or len(shape) < 2 or issparse(X):
            return X
        if several:
            if len(shape) > 2:
                raise ValueError(
                    f"X has shape {tuple(shape)}; this model's inputs "
                    f"{sample_shape} take flat rows of features side by side, "
                    "or a dict of arrays by input name."
                )
            return X
        size = int(np.prod(sample_shape))
        # Fitted on flat rows, n_features_in_ is their length; on shaped samples,
        # the first axis of a sample (where both agree, either layout works).
        fitted_flat = self.n_features_in_ == size
        given = tuple(shape[1:])
        if given == sample_shape:
            return np.asarray(X).reshape(shape[0], size) if fitted_flat else X
        if len(shape) == 2 and shape[1] == size:
            return X if fitted_flat else np.asarray(X).reshape((shape[0],) + sample_shape)
        name = type(self).__name__
        if len(shape) == 2:  # scikit-learn's words first, as its checks expect
            raise ValueError(
                f"X has {shape[1]} features, but {name} is expecting {size} features "
                f"as input: flat rows of {size} features or samples of shape "
                f"{sample_shape}, the shape it was fitted on."
            )
        raise ValueError(
            f"X has samples of shape {given}, but {name} was fitted on samples of "
            f"shape {sample_shape}: give flat rows of {size} features or samples of "
            f"shape {sample_shape}."
        )

    def _prediction_input(self, X):
        """X (array or dict of arrays by input name) validated against the
        fitted model, as :meth:`_outputs` takes it."""
        check_is_fitted(self)
        X = self._to_fitted_layout(self._flatten_inputs(X))
        self._check_sparse_input(X, first=False, fitting=False)
        X = self._validate_input(X, reset=False)[0]
        self._warn_if_features_too_large(X)
        return X

    def _warn_if_features_too_large(self, X):
        """Warn, with the advice to scale them, about features so large that
        training's squares and sums overflow the dtype (fit, partial_fit and
        predict alike). A warning, not an error, as scikit-learn does for
        valid but ill-suited data: the values are finite numbers of the dtype
        and some models still predict sensibly from them; what cannot work
        (values the dtype cannot hold, overflowed outputs or weights) stays
        an error."""
        message = too_large_features(X, self.dtype)
        if message is not None:
            warnings.warn(message, UserWarning)

    def _why_not_sparse(self, first):
        """Why the network (the one ``fit`` is about to build when ``first``)
        cannot take sparse X, or None when it can: its first layer must be a
        Dense layer on flat samples, which multiplies X through its stored
        values."""
        if first:
            several = isinstance(self.input_shape, dict)
            shape = (None if self.input_shape is None or several
                     else tuple(int(d) for d in np.atleast_1d(self.input_shape)))
            specs = [Dense(100)] if self.layers is None else list(self.layers)
            # No hidden layers: the output Dense layer comes first.
            start = specs[0] if specs else None
            starts_dense = start is None or type(start) is Dense
        else:
            several = self.network_.input_shapes is not None
            shape = self._main_input_shape()
            start = self.network_.layers[0]
            starts_dense = isinstance(start, DenseLayer)
        if several:
            return f"this network has several inputs {self.input_shape}"
        if shape is not None and len(shape) != 1:
            return f"this network takes samples of shape {shape}"
        if not starts_dense:
            name = getattr(start, "name", None)
            return f"this network starts with {type(start).__name__}" + (
                f" {name!r}" if name else "")
        return None

    def _check_sparse_input(self, X, first, fitting):
        """A clear TypeError, before any work, for sparse X the network
        cannot take (or, when ``fitting``, that ``augment`` would have to
        transform)."""
        if not issparse(X):
            return
        reason = self._why_not_sparse(first)
        if reason is not None:
            raise TypeError(
                "Sparse X is accepted only by a network whose first layer is a "
                "Dense layer on flat samples (it multiplies X through its stored "
                f"values); {reason}, which need dense data: pass X.toarray()."
            )
        if fitting and self.augment:
            raise TypeError("augment transforms dense samples; sparse X cannot be "
                            "augmented: pass X.toarray() or augment=None.")

    def _predict_outputs(self, X):
        outputs = self._outputs(self._prediction_input(X))
        if not np.isfinite(outputs).all():
            rows = np.flatnonzero(~np.isfinite(outputs).all(axis=1))
            raise ValueError(
                f"The network's outputs overflowed to infinity or NaN for "
                f"{rows.size} sample(s) (first: {rows[:5].tolist()}): their "
                f"features are too large for the network in {self.dtype}. "
                f"{SCALE_ADVICE} or use dtype='float64'."
            )
        return outputs

    # -- training -----------------------------------------------------------
    def _class_weights(self, y, incremental):
        """Per-sample weights from ``class_weight`` (the classifier's), or None."""
        return None

    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        if self.final_epochs and not self.early_stopping:
            # They follow early stopping's best epoch; without it they would
            # silently never run.
            raise ValueError(
                f"final_epochs={self.final_epochs} trains on all the samples after "
                "early stopping, but early_stopping=False: set early_stopping=True "
                "or final_epochs=0."
            )
        first = (not hasattr(self, "network_")
                 or (not incremental and not self.warm_start))
        X = self._flatten_inputs(X)
        if not first:
            X = self._to_fitted_layout(X)
        X, y = self._validate_input(X, y, reset=first)
        self._check_sparse_input(X, first, fitting=True)
        if first:
            self._training_state = TrainingState(check_random_state(self.random_state))
        state = self._training_state
        Y = self._validate_targets(y, first, classes)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        # scikit-learn's callbacks see the data as given to fit (ScoringMonitor
        # scores on it), not the network's view or the training part of a split.
        given = (X, y, sample_weight)
        class_weights = self._class_weights(y, incremental)
        if class_weights is not None:
            sample_weight = (class_weights if sample_weight is None
                             else sample_weight * class_weights)
        if first:
            self.input_shape_ = self._sample_shape(X)
        self._augmenters = check_augment(self.augment, self._main_input_shape())
        if self._augmenters and state.augment_rng is None:
            # Drawn only when augmenting: models without it stay as they were.
            state.augment_rng = np.random.default_rng(state.random_state.randint(2**31))
        callbacks = check_callbacks(self.callbacks)
        # Sums over the batch run in float64 when the data came as float64, so
        # an integer sample weight k trains exactly like k repeated samples.
        accumulate = np.float64 if X.dtype == np.float64 else np.dtype(self.dtype)
        Xn = self._network_input(X)  # refuses values the dtype cannot hold
        self._warn_if_features_too_large(X)
        self._optimizer = resolve_optimizer(self.optimizer)
        schedule_run = (state.schedule_run if incremental and state.schedule_run is not None
                        else resolve_schedule(self.lr_schedule).start(self.learning_rate,
                                                                      self.max_iter))
        if schedule_run.needs_validation and (incremental or not self.early_stopping):
            # Before anything is built or trained: the schedule could not run.
            where = ("partial_fit holds out no validation set" if incremental else
                     "this fit holds out no validation set (early_stopping=False)")
            raise ValueError(
                f"lr_schedule={self.lr_schedule!r} needs the validation loss "
                f"(monitor='validation' or 'both', or rollback='validation'), but "
                f"{where}. Fit with early_stopping=True, or use monitor='auto' or "
                "'train' and rollback=True or 'train'."
            )
        state.schedule_run = schedule_run
        if first:
            self.network_ = self._build_network(Y.shape[1])
            self._warn_if_layers_end_in_an_output_layer(Y.shape[1])
            state.optimizer_state = self._optimizer.init_state(self.network_.params)
            state.dropout_rng = np.random.default_rng(state.random_state.randint(2**31))
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self.validation_scores_ = []
            self.history_ = []
            self.best_loss_ = np.inf
            self.best_validation_score_ = None
        else:
            # joblib.load(..., mmap_mode='r') hands read-only parameters.
            self.network_.make_writeable()
            state.optimizer_state = {
                key: value if not isinstance(value, np.ndarray) or value.flags.writeable
                else np.array(value) for key, value in state.optimizer_state.items()}
        if not first and self.network_.output_shape != (Y.shape[1],):
            raise ValueError(
                f"y has {Y.shape[1]} outputs but the fitted network has "
                f"{self.network_.output_shape[0]}; fit again with warm_start=False."
            )
        validation = rows = None
        if self.early_stopping and not incremental:
            # Xn stays whole (a memmap is not read in): training gathers its
            # batches from the training rows; only the held-out part is copied.
            (rows, Y, y, sample_weight), validation = validation_split(
                Xn, Y, y, sample_weight, self.validation_fraction,
                stratify=self._stratify(y), random_state=state.random_state)
        run = TrainingRun(self, state, Xn, Y, sample_weight, accumulate, validation,
                          callbacks, rows=rows)
        skl_callbacks = SklearnCallbacks(self, 1 if incremental else self.max_iter, *given)
        call(callbacks, "on_fit_begin", self)
        try:
            run.epochs(1 if incremental else self.max_iter, incremental, skl_callbacks)
            if self.final_epochs and validation is not None and not run.interrupted:
                run.final_epochs(self.final_epochs)
        finally:
            self.network_.release_scratch()
            skl_callbacks.end()
            call(callbacks, "on_fit_end", self)
        return self

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(AUTO_BATCH_SIZE, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                f"Got batch_size={self.batch_size} larger than the number of samples "
                f"({n_samples}); using {n_samples}.", UserWarning,
            )
        return min(self.batch_size, n_samples)

    def _stratify(self, y):
        """Whether the validation split is stratified by y."""
        return False

    def _validation_score(self, outputs, y, sample_weight):
        """The score of ``score`` (accuracy, R^2) for network outputs."""
        return self._score_metric(y, self._predictions(outputs), sample_weight=sample_weight)

    @abstractmethod
    def _predictions(self, outputs):
        """What ``predict`` returns for these network outputs."""

    def _converged(self, loss, state):
        """Whether the monitored loss (validation loss with early stopping, else
        the training loss) failed to improve by tol for n_iter_no_change epochs,
        counted in ``state`` (a TrainingState)."""
        if loss > self.best_loss_ - self.tol:
            state.no_improvement_count += 1
        else:
            state.no_improvement_count = 0
        self.best_loss_ = min(self.best_loss_, loss)
        return state.no_improvement_count > self.n_iter_no_change

    # -- public API shared by both estimators --------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to X and y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
(n_samples, *input_shape), or dict of arrays by input name
            Anything numeric scikit-learn takes (arrays of any real or object
            dtype, lists, DataFrames, whose column names become
            ``feature_names_in_``). Sparse X (CSR, CSC, COO) needs a network
            whose first layer is ``Dense`` on flat samples, which multiplies
            it through its stored values. A dict holds each input of a network
            with side inputs (see ``input_shape``). An ``np.memmap`` (or
            ``np.load(..., mmap_mode="r")``) in the estimator's ``dtype`` is
            never copied whole: each step reads its batch, early stopping
            copies only the held-out samples; in another dtype it is
            converted, a copy of X in memory.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (a label indicator matrix for multilabel targets) for
            the classifier; targets for the regressor.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)

    def activations(self, X, layer=None):
        """Outputs of a hidden layer, for feature extraction.

        Computed at inference (dropout off, batch normalization with its
        running statistics), a chunk of samples at a time (as ``predict``). In a
        ``Pipeline``, :class:`skdl.inspection.LayerActivations` makes this a
        transform step.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
(n_samples, *input_shape), or dict of arrays by input name
        layer : str or None, default=None
            Name of the layer (as in ``get_weights``; nested layers and block
            parts such as ``block1/conv`` included). None is the last hidden
            layer, the one before the output layer.

        Returns
        -------
        ndarray of shape (n_samples, *output_shape of the layer)
            In the estimator's dtype.
        """
        X = self._prediction_input(X)
        name = self._last_hidden_layer() if layer is None else layer
        return self._forward_in_chunks(X, convert=True, layer=name)

    def _last_hidden_layer(self):
        hidden = [layer.name for layer in self.network_.layers
                  if layer.name not in ("output_flatten", "output")]
        if not hidden:
            raise ValueError("This model has no hidden layers (layers=[]); name the "
                             "layer whose outputs you want.")
        return hidden[-1]

    def summary(self, n_samples=None, batch_size=None, n_outputs=None, calibrate=True):
        """Per-layer output shapes, parameters, FLOPs and memory, and the time
        an epoch would take (pydnn's ``net_size``, Keras's ``summary``).

        Works before fitting when ``input_shape`` is known (then the output
        layer needs ``n_outputs``), and describes the fitted network after.

        Parameters
        ----------
        n_samples : int or None, default=None
            Samples per epoch, for the estimated time per epoch.
        batch_size : int or None, default=None
            Samples per batch; None is the estimator's (``'auto'``:
            ``min(256, n_samples)``, 256 without ``n_samples``).
        n_outputs : int or None, default=None
            Output units of a network not fitted yet: the number of classes
            (1 for binary targets), labels or regression targets. Ignored once
            fitted.
        calibrate : bool, default=True
            Time a few training steps (forward, backward and an optimizer
            update on a copy of the network, with random data) at the current
            thread count, for ``seconds_per_batch`` and the time per epoch.

        Returns
        -------
        summary : NetworkSummary
            Prints as a table; ``summary.rows`` holds one dict per layer
            (``name``, ``type``, ``output_shape``, ``params``, ``flops``
            per sample, ``activation_bytes`` per batch, ``depth``) and
            ``total_params``, ``total_flops``, ``total_activation_bytes``,
            ``seconds_per_batch`` and ``epoch_seconds()`` the totals.
        """
        if batch_size is None:
            batch_size = (min(AUTO_BATCH_SIZE, n_samples or AUTO_BATCH_SIZE)
                          if self.batch_size == "auto" else self.batch_size)
        if hasattr(self, "network_"):
            network = self.network_
        else:
            network = self._unfitted_network(n_outputs)
        seconds = None
        if calibrate:
            seconds = self._time_training_step(network, int(batch_size))
        return summarize(network.layers, batch_size, network.dtype, n_samples, seconds)

    def _unfitted_network(self, n_outputs):
        """The network fit would build, from ``input_shape`` and ``n_outputs``."""
        if self.input_shape is None:
            raise ValueError(
                "summary() before fitting needs input_shape: the shape of one sample "
                "(a dict of shapes with side inputs)."
            )
        if (not isinstance(n_outputs, Integral) or isinstance(n_outputs, bool)
                or n_outputs < 1):
            raise ValueError(
                "summary() before fitting needs n_outputs, the number of output "
                "units: the number of classes (1 for binary targets), labels or "
                f"targets; got {n_outputs!r}."
            )
        self._validate_params()
        if isinstance(self.input_shape, dict):
            shape = self._input_shapes()
        else:
            shape = tuple(self.input_shape)
            if -1 in shape:
                raise ValueError(
                    f"input_shape {shape} has a -1, known only from X: fit first, or "
                    "give every size."
                )
            shape = resolve_shape(shape, int(np.prod(shape)), what="input_shape")
        # A throwaway estimator state: this one stays unfitted.
        builder = clone(self)
        builder.input_shape_ = shape
        return builder._build_network(int(n_outputs), np.random.RandomState(0))

    def _time_training_step(self, network, batch_size, steps=5):
        """Median seconds of a training step on a copy of ``network``."""
        network = copy.deepcopy(network)
        rng = np.random.RandomState(0)
        if network.input_shapes is None:
            shape = (batch_size,) + tuple(network.input_shape)
        else:
            shape = (batch_size, sum(int(np.prod(s)) for s in network.input_shapes.values()))
        # Zeros and ones: valid pixels, signals and token indices alike.
        X = (rng.rand(*shape) < 0.5).astype(network.dtype)
        optimizer = resolve_optimizer(self.optimizer)
        state = optimizer.init_state(network.params)
        dropout_rng = np.random.default_rng(0)
        times = []
        for step in range(1, steps + 2):  # the first one warms up
            started = time.perf_counter()
            outputs = network.forward(X, training=True, rng=dropout_rng)
            network.backward(np.full_like(outputs, 1.0 / batch_size), None, 1.0,
                             network.dtype)
            optimizer.step(network.params, network.grads, state, self.learning_rate, step)
            times.append(time.perf_counter() - started)
        network.release_scratch()
        return float(np.median(times[1:]))

    def get_weights(self):
        """Copies of the fitted parameters.

        Returns
        -------
        dict
            ``{layer_name: {param_name: ndarray}}``; each layer's docstring gives
            the layout (e.g. a Dense ``kernel`` is ``(n_in, units)``). The output
            layer is named ``output``.
        """
        check_is_fitted(self)
        return self.network_.get_weights()

    def set_weights(self, weights):
        """Overwrite fitted parameters from the format of :meth:`get_weights`.

        Parameters
        ----------
        weights : dict
            ``{layer_name: {param_name: array}}``; layers left out keep their
            values. Shapes must match; nothing is written if any does not.

        Returns
        -------
        self
        """
        check_is_fitted(self)
        self.network_.set_weights(weights)
        return self

    def __getstate__(self):
        # A copy: object.__getstate__ hands the live __dict__ (Python >= 3.11),
        # and the format tags must not end up on the model being saved.
        state = dict(super().__getstate__())
        state["_skdl_pickle_format"] = PICKLE_FORMAT
        state["_skdl_version"] = __version__
        return state

    def __setstate__(self, state):
        state = dict(state)
        written = state.pop("_skdl_pickle_format", 1)  # pickles from before it: 1
        version = state.pop("_skdl_version", "unknown")
        if not isinstance(written, int) or written > PICKLE_FORMAT:
            raise ValueError(
                f"This {type(self).__name__} was pickled by skdl {version} in pickle "
                f"format {written!r}; this skdl ({__version__}) reads format "
                f"{PICKLE_FORMAT} and older. Load it with a newer skdl, or save it "
                "there with skdl.save and load that file here."
            )
        if "_training_state" not in state and "_random_state" in state:
            # Format 1 kept the training state in attributes of its own.
            state["_training_state"] = TrainingState.from_attributes(state)
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = self._why_not_sparse(first=True) is None
        return tags


class NNClassifier(ClassifierMixin, BaseNN):
    """Neural-network classifier trained by skdl's compiled kernels.

    The hidden part of the network is given by ``layers``; the output layer is
    added from ``y``: softmax over the classes for multiclass targets, one
    sigmoid unit for binary targets and one per label for multilabel targets,
    all trained with the log-loss on logits.

    Parameters
    ----------
    layers : list of layer specs, default=None
        Hidden layers, e.g. ``[Dense(64, activation='relu'), Dropout(0.2)]``.
        None means ``[Dense(100, activation='relu')]``, as in MLPClassifier.
    input_shape : tuple of int, default=None
        Shape of one sample. A flat X of shape (n, n_features) is reshaped to
        it; one entry may be -1 (inferred): ``(1, -1)`` makes the features a
        one-channel signal, ``(-1, 1)`` a sequence of scalars. Arrays with more
        than two dimensions are taken as they are. None keeps X flat.
    loss : {'log_loss', 'hellinger'}, default='log_loss'
        ``log_loss`` is the cross-entropy; ``hellinger`` the squared Hellinger
        distance between the predicted and the target distributions (bounded
        by 1 per sample, so mislabelled samples pull less; NumpyDL's loss).
    optimizer : str or optimizer, default='adam'
        A name ('sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop',
        'adadelta', 'adam', 'adamax', 'adamw') or an instance from
        :mod:`skdl.optimizers`, whose parameters are searchable as
        ``optimizer__beta1`` etc. Gradient clipping (``clipnorm``,
        ``clipvalue``) and decoupled weight decay are optimizer parameters.
    learning_rate : float, default=0.001
        The initial learning rate.
    lr_schedule : str or schedule, default=None
        How the rate changes from epoch to epoch: None or 'constant', a name
        ('inverse_time', 'patience', 'plateau', 'cosine') or an instance from
        :mod:`skdl.schedules` (searchable as ``lr_schedule__factor`` etc.).
        The monitored loss is the validation loss with ``early_stopping``,
        else the training loss.
    batch_size : int or 'auto', default='auto'
        'auto' is ``min(256, n_samples)``.
    max_iter : int, default=200
        Maximum number of epochs.
    l1, l2 : float, default=0.0
        Penalties ``l1 * sum(|w|) + l2 * sum(w**2)`` added to each batch's mean
        loss, over the weights of every layer (kernels, not biases,
        normalization parameters or PReLU slopes). A layer's own
        ``kernel_regularizer`` replaces them for that layer.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the samples (stratified), stop when
        the validation loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the weights of the best epoch.
        ``partial_fit`` trains on all it is given (no hold-out), as
        scikit-learn's MLP does.
    validation_fraction : float in (0, 1), default=0.1
        Used with ``early_stopping``.
    tol : float, default=1e-4
        Training stops when the monitored loss has not improved by ``tol`` for
        ``n_iter_no_change`` consecutive epochs.
    n_iter_no_change : int, default=10
    final_epochs : int, default=0
        Epochs trained after early stopping on all the samples, validation
        set included (pydnn's final epochs). Needs ``early_stopping=True``
        (``fit`` and ``partial_fit`` raise a ValueError
        otherwise); ``partial_fit``, which holds
        out nothing, does not run them.
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into ``sample_weight``: they apply to
        the loss, to the validation loss and score, and so to early stopping.
        'balanced' is ``n_samples / (n_classes * count(class))``. ``score``
        stays scikit-learn's accuracy (weighted by the ``sample_weight`` passed
        to it), so scores compare across values of ``class_weight``; use
        ``scoring='balanced_accuracy'`` in a search for a class-balanced one.
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    random_state : int, RandomState or None, default=None
        Seeds initialization, the validation split, shuffling and dropout. The
        same seed gives the same model bit for bit, whatever the number of
        threads.
    dtype : {'float32', 'float64'}, default='float32'
        Precision of weights and activations. Parameter gradients are summed
        over each batch in float64 when X is float64.
    callbacks : list of callbacks, default=None
        Objects with hooks called during ``fit`` (see :mod:`skdl.callbacks`:
        early stopping on any monitored value, checkpoints of the best epoch,
        learning-rate functions, user hooks). scikit-learn's callbacks are
        set with ``set_callbacks`` instead.
    verbose : int, default=0
        1 prints a table row per epoch (losses, score, rate, time); 2 adds a
        progress bar within each epoch when the output is a terminal or a
        notebook (piped output and logs get the table rows alone, one line
        per epoch, with no carriage returns).
    warm_start : bool, default=False
        Continue from the previous fit's weights.
    augment : augmenter, list of augmenters or None, default=None
        Random transformations of each training batch, from
        :mod:`skdl.augment` (flips, shifts, rotations, crops and noise for
        images; shifts, scaling and noise for signals), applied in order to
        the (main) input while fitting only: never to the validation set of
        ``early_stopping`` nor at prediction. Drawn from ``random_state``, so
        the same seed gives the same model.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string column names (e.g. a DataFrame).
    input_shape_ : tuple of int
        Shape of one sample as the network takes it.
    n_outputs_ : int
        Number of output units (1 for binary targets).
    network_ : skdl._network.Network
        The fitted network.
    loss_ : float
        Training loss of the last epoch (penalties included).
    loss_curve_ : list of float
        Training loss per epoch.
    validation_scores_ : list of float
        Accuracy on the validation set per epoch (empty without early stopping).
    best_validation_score_ : float or None
        Validation accuracy of the best epoch.
    best_loss_ : float
        Lowest monitored loss: the validation loss with early stopping, else
        the training loss.
    history_ : list of dict
        One entry per epoch: ``epoch``, ``train_loss``, ``val_loss``,
        ``val_score``, ``learning_rate`` and ``duration`` (seconds).
    learning_rate_ : float
        Learning rate of the last epoch.
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen.

    Notes
    -----
    Training stops with a ``ValueError`` naming the epoch and batch if the
    loss or the weights become NaN or infinite; the model then keeps the last
    weights that gave a finite loss (never NaN weights). ``KeyboardInterrupt``
    (Ctrl-C) ends ``fit`` early with a warning; the model keeps the weights of
    its last completed step and can be used.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdl import NNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = NNClassifier(max_iter=5, random_state=0).fit(X / 16, y)
    >>> clf.predict(X[:3] / 16).shape
    (3,)
    """

    # The metric of ClassifierMixin.score, also used on the validation set.
    _score_metric = staticmethod(accuracy_score)

    _parameter_constraints = {
        **BaseNN._parameter_constraints,
        "loss": [StrOptions({"log_loss", "hellinger"})],
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(self, layers=None, *, loss="log_loss", input_shape=None,
                 optimizer="adam", learning_rate=0.001, lr_schedule=None,
                 batch_size="auto", max_iter=200, l1=0.0, l2=0.0,
                 early_stopping=False, validation_fraction=0.1, tol=1e-4,
                 n_iter_no_change=10, final_epochs=0, class_weight=None, shuffle=True,
                 random_state=None, dtype="float32", callbacks=None, verbose=0,
                 warm_start=False, augment=None):
        super().__init__(
            layers=layers, input_shape=input_shape, optimizer=optimizer,
            learning_rate=learning_rate, lr_schedule=lr_schedule, batch_size=batch_size,
            max_iter=max_iter, l1=l1, l2=l2, early_stopping=early_stopping,
            validation_fraction=validation_fraction, tol=tol,
            n_iter_no_change=n_iter_no_change, final_epochs=final_epochs,
            shuffle=shuffle, random_state=random_state, dtype=dtype,
            callbacks=callbacks, verbose=verbose, warm_start=warm_start,
            augment=augment,
        )
        self.loss = loss
        self.class_weight = class_weight

    def _class_weights(self, y, incremental):
        if self.class_weight is None:
            return None
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: the class "
                "frequencies of later batches are unknown. Pass a dict of weights, "
                "or compute them with sklearn.utils.class_weight.compute_class_weight "
                "on all the data."
            )
        if isinstance(self.class_weight, dict):
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown and self._label_binarizer.y_type_ != "multilabel-indicator":
                raise ValueError(
                    f"class_weight has weights for {sorted(unknown, key=str)}, which "
                    f"are not classes; the classes are {self.classes_.tolist()}."
                )
        return compute_sample_weight(self.class_weight, y)

    def _stratify(self, y):
        return self._label_binarizer.y_type_ != "multilabel-indicator"


    def _validate_targets(self, y, first, classes=None):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if first:
            binarizer = LabelBinarizer()
            binarizer.fit(y if classes is None else classes)
            if binarizer.y_type_ != "multilabel-indicator" and len(binarizer.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes, but "
                    f"the data contains only one class: {binarizer.classes_[0]!r}."
                )
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
            self._loss_fn = self._make_loss()
        if (y.ndim == 1 and y.dtype.kind in "biuf" and self.classes_.dtype.kind in "biuf"
                and self._label_binarizer.y_type_ in ("binary", "multiclass")):
            Y = self._one_hot(y)
        else:
            if y.ndim == 1 or type_of_target(y) != "multilabel-indicator":
                # LabelBinarizer would silently encode an unknown label as no class.
                self._reject_unseen(np.setdiff1d(unique_labels(y), self.classes_))
            Y = self._label_binarizer.transform(y).astype(self.dtype)
        self.n_outputs_ = Y.shape[1]
        return Y

    def _make_loss(self):
        """The loss for ``loss`` and the kind of target the binarizer saw:
        softmax over multiclass targets, sigmoids over binary and multilabel."""
        multiclass = self._label_binarizer.y_type_ == "multiclass"
        if self.loss == "hellinger":
            return SoftmaxHellinger() if multiclass else SigmoidHellinger()
        return SoftmaxCrossEntropy() if multiclass else SigmoidCrossEntropy()

    def _one_hot(self, y):
        """Numeric 1-D labels encoded as LabelBinarizer.transform encodes them
        (one column for two classes), without its validation of y, which fit
        has done: it cost 2 ms a call, a tenth of a small fit."""
        classes = self.classes_
        index = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
        known = classes[index] == y
        if not known.all():
            self._reject_unseen(np.unique(y[~known]))
        if len(classes) == 2:
            return (index == 1).astype(self.dtype)[:, None]
        Y = np.zeros((y.shape[0], len(classes)), dtype=self.dtype)
        Y[np.arange(y.shape[0]), index] = 1
        return Y

    def _reject_unseen(self, unseen):
        if unseen.size:
            raise ValueError(
                f"y contains labels {unseen.tolist()} not among the classes "
                f"{self.classes_.tolist()} the estimator was fitted with."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over X and y, building the network on the first call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
(n_samples, *input_shape), or dict of arrays by input name
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_classes,), default=None
            All classes; required on the first call, ignored afterwards.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        if _check_partial_fit_first_call(self, classes):
            for attribute in ("network_", "_label_binarizer"):
                if hasattr(self, attribute):
                    delattr(self, attribute)
        return self._fit(X, y, sample_weight, incremental=True,
                         classes=getattr(self, "classes_", classes))

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
(n_samples, *input_shape), or dict of arrays by input name

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
            Rows sum to one for multiclass and binary targets; for multilabel
            targets each column is the probability of its label.
        """
        Z = self._predict_outputs(X)
        P = self._loss_fn.transform(Z)
        if self._label_binarizer.y_type_ == "binary":
            P = np.hstack([1.0 - P, P])
        return P

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably from the logits.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
(n_samples, *input_shape), or dict of arrays by input name

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
        """
        Z = self._predict_outputs(X)
        if self._label_binarizer.y_type_ == "binary":
            return np.hstack([self._loss_fn.log_transform(-Z),
                              self._loss_fn.log_transform(Z)])
        return self._loss_fn.log_transform(Z)

    def predict(self, X):
        """Predicted class labels (or label indicator rows for multilabel).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
(n_samples, *input_shape), or dict of arrays by input name

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        return self._predictions(self._predict_outputs(X))

    def _predictions(self, outputs):
        return self._label_binarizer.inverse_transform(self._loss_fn.transform(outputs))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class NNRegressor(RegressorMixin, BaseNN):
    """Neural-network regressor trained by skdl's compiled kernels.

    The hidden part of the network is given by ``layers``; a linear output
    layer with one unit per target column is added from ``y``.

    Parameters
    ----------
    layers : list of layer specs, default=None
        Hidden layers. None means ``[Dense(100, activation='relu')]``.
    loss : {'squared_error', 'absolute_error', 'huber', 'poisson'}, default='squared_error'
        Averaged over the targets of a sample. ``huber`` switches from squared
        to absolute error at 1.0; ``poisson`` predicts ``exp(output)`` and
        needs non-negative targets.
    input_shape : tuple of int, default=None
        See :class:`NNClassifier`.
    optimizer, learning_rate, lr_schedule, batch_size, max_iter, l1, l2, \
early_stopping, validation_fraction, tol, n_iter_no_change, final_epochs, \
shuffle, random_state, dtype, callbacks, verbose, warm_start, augment
        As in :class:`NNClassifier`; the validation split is not stratified
        and its score is R^2.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    input_shape_ : tuple of int
    n_outputs_ : int
        Number of target columns.
    network_ : skdl._network.Network
    loss_ : float
    loss_curve_ : list of float
    validation_scores_ : list of float
        R^2 on the validation set per epoch (empty without early stopping).
    best_validation_score_ : float or None
    best_loss_ : float
    history_ : list of dict
        See :class:`NNClassifier`.
    learning_rate_ : float
    n_iter_ : int
    t_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skdl import NNRegressor
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
    >>> reg = NNRegressor(max_iter=5, random_state=0).fit(X, X.ravel() ** 2)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    # The metric of RegressorMixin.score, also used on the validation set.
    _score_metric = staticmethod(r2_score)

    _parameter_constraints = {
        **BaseNN._parameter_constraints,
        "loss": [StrOptions(set(_ops.REGRESSION_LOSSES))],
    }

    def __init__(self, layers=None, *, loss="squared_error", input_shape=None,
                 optimizer="adam", learning_rate=0.001, lr_schedule=None,
                 batch_size="auto", max_iter=200, l1=0.0, l2=0.0,
                 early_stopping=False, validation_fraction=0.1, tol=1e-4,
                 n_iter_no_change=10, final_epochs=0, shuffle=True, random_state=None,
                 dtype="float32", callbacks=None, verbose=0, warm_start=False,
                 augment=None):
        super().__init__(
            layers=layers, input_shape=input_shape, optimizer=optimizer,
            learning_rate=learning_rate, lr_schedule=lr_schedule, batch_size=batch_size,
            max_iter=max_iter, l1=l1, l2=l2, early_stopping=early_stopping,
            validation_fraction=validation_fraction, tol=tol,
            n_iter_no_change=n_iter_no_change, final_epochs=final_epochs,
            shuffle=shuffle, random_state=random_state, dtype=dtype,
            callbacks=callbacks, verbose=verbose, warm_start=warm_start,
            augment=augment,
        )
        self.loss = loss


    def _validate_targets(self, y, first, classes=None):
        if self.loss == "poisson" and (np.any(y < 0) or np.sum(y) <= 0):
            raise ValueError(
                "Some value(s) of y are negative or all are zero, which is not "
                "allowed for Poisson regression."
            )
        Y = (y.reshape(-1, 1) if y.ndim == 1 else y).astype(self.dtype)
        if first:
            self._loss_fn = self._make_loss()
            self.n_outputs_ = Y.shape[1]
            self._y_ndim = y.ndim
        return Y

    def _make_loss(self):
        """The loss for ``loss``."""
        return RegressionLoss(self.loss)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch over X and y, building the network on the first call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
(n_samples, *input_shape), or dict of arrays by input name
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
(n_samples, *input_shape), or dict of arrays by input name

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets), float64
            One dimension when the model was fitted on a 1-D y.
        """
        return self._predictions(self._predict_outputs(X))

    def _predictions(self, outputs):
        P = self._loss_fn.transform(outputs)
        return P.ravel() if self._y_ndim == 1 else P

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
