"""scikit-learn's own estimator checks, with nothing expected to fail."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdl import (
    GRU,
    LSTM,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Conv2D,
    ConvBlock1D,
    Dense,
    Flatten,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    HiddenBlock,
    LayerNormalization,
    MaxPool1D,
    MaxPool2D,
    MultiHeadAttention,
    NNClassifier,
    NNRegressor,
    Pathways,
    PositionalEmbedding,
    PReLU,
    TransformerEncoderBlock,
)

ESTIMATORS = [
    NNClassifier(),
    NNRegressor(),
    # Deeper, other activations, SGD with Nesterov momentum, float64.
    NNClassifier(layers=[Dense(32, activation="tanh"), Dense(16, activation="elu")],
                 optimizer="nesterov", learning_rate=0.01, dtype="float64"),
    NNRegressor(layers=[Dense(32, activation="softplus"), Dense(8, activation="leaky_relu")],
                loss="huber", optimizer="momentum", learning_rate=0.01),
    # Convolutional: flat features read as a one-channel signal or image.
    NNClassifier(layers=[Conv1D(4, 3, padding="same"), Flatten(), Dense(8)],
                 input_shape=(1, -1)),
    NNRegressor(layers=[Conv1D(6, 3, padding="same", activation="relu"),
                        MaxPool1D(2, strides=1, padding="same"), Flatten()],
                input_shape=(1, -1)),
    NNClassifier(layers=[Conv2D(4, (2, 3), padding="same", activation="tanh"),
                         MaxPool2D(2, padding="same"), Flatten()],
                 input_shape=(1, -1, 1)),
    # Recurrent: flat features read as a sequence of one feature per step.
    NNRegressor(layers=[GRU(4)], input_shape=(-1, 1), learning_rate=0.01),
    NNClassifier(layers=[Bidirectional(LSTM(3, return_sequences=True)),
                         GlobalMaxPool1D(data_format="channels_last")],
                 input_shape=(-1, 1)),
    # A recurrent layer's sequence convolved and pooled along its steps
    # (data_format=None after return_sequences=True: channels-last).
    NNClassifier(layers=[LSTM(3, return_sequences=True),
                         Conv1D(4, 2, padding="same", activation="relu"),
                         MaxPool1D(2, padding="same"), GlobalMaxPool1D()],
                 input_shape=(-1, 1)),
    # Batch statistics and learned slopes, on dense features and on channels.
    NNClassifier(layers=[Dense(16), BatchNormalization(), PReLU()]),
    NNRegressor(layers=[Conv1D(4, 3, padding="same"), BatchNormalization(momentum=0.9),
                        PReLU(), Flatten()], input_shape=(1, -1)),
    # Pathways (with an identity branch) and composite blocks. (Not
    # dropout or augmentation: their per-sample random draws differ between a
    # weighted sample and its repeats, which check_sample_weight_equivalence
    # compares.)
    NNClassifier(layers=[Pathways([[], [Dense(8, activation="relu"), Dense(4)]]),
                         HiddenBlock(8, activation="tanh")]),
    NNRegressor(layers=[ConvBlock1D(4, pool=None),
                        Pathways([[Conv1D(2, 1)], [Conv1D(4, 3, padding="same")], []],
                                 merge="concat"), Flatten(), HiddenBlock(8, batch_norm=True)],
                input_shape=(1, -1)),
    # Attention: flat features read as a sequence of one feature per step,
    # projected to 8 features per step (no dropout, as above). Positions
    # matter: attention and a mean over the steps alone cannot tell which
    # feature a value came from.
    NNClassifier(layers=[Dense(8), PositionalEmbedding(), MultiHeadAttention(2, 4),
                         LayerNormalization(), GlobalAvgPool1D()], input_shape=(-1, 1)),
    NNRegressor(layers=[Dense(4), PositionalEmbedding("sinusoidal"),
                        TransformerEncoderBlock(2, ff_units=8, norm_first=True),
                        GlobalMaxPool1D()], input_shape=(-1, 1), learning_rate=0.01),
]


# Small check data and the default max_iter leave some fits unconverged; the
# warning says so and is not what these checks test.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
