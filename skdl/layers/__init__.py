"""Layer specs for the ``layers`` parameter of the estimators."""
from ._base import Layer, LayerSpec
from .attention import (
    LayerNormalization,
    MultiHeadAttention,
    PositionalEmbedding,
    TransformerEncoderBlock,
)
from .blocks import ConvBlock1D, ConvBlock2D, HiddenBlock
from .conv import Conv1D, Conv2D
from .core import Activation, Dense, Dropout, Flatten, PReLU, Reshape
from .embedding import Embedding, Masking
from .merge import MergeInput, Pathways
from .normalization import BatchNormalization
from .pooling import (
    AvgPool1D,
    AvgPool2D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    LastStep,
    MaxPool1D,
    MaxPool2D,
)
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN

__all__ = [
    "Activation",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNormalization",
    "Bidirectional",
    "Conv1D",
    "Conv2D",
    "ConvBlock1D",
    "ConvBlock2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRU",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "HiddenBlock",
    "LSTM",
    "LastStep",
    "Layer",
    "LayerNormalization",
    "LayerSpec",
    "Masking",
    "MaxPool1D",
    "MaxPool2D",
    "MergeInput",
    "MultiHeadAttention",
    "PReLU",
    "Pathways",
    "PositionalEmbedding",
    "Reshape",
    "SimpleRNN",
    "TransformerEncoderBlock",
]
