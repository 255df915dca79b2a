"""Operations: the only importer of :mod:`skdl._kernels`, one module per kernel
family (``dense``, ``conv``, ``pool``, ``recurrent``, ``norm``, ``attention``,
``loss``, ``optim``, ``activations``; ``dropout`` and ``embedding`` are numpy
only), with the checks they share in ``_checks``, the thread choice in
``_threads`` and the recurrent cells' registry in ``cells``.

Each op validates shapes and dtypes in Python and raises ``ValueError`` or
``TypeError`` before any ``nogil`` code runs, makes its inputs C-contiguous,
allocates its outputs, reads the OpenMP thread count at call time and calls
one kernel. :mod:`skdl._reference` has a plain-numpy twin of every op with the
same name and signature; the tests hold each op to its twin.

The ops a training step repeats have a ``bind_`` form: the same checks, run
once, then a callable that runs the kernel on the same arrays at every call
(their values may change, their shapes may not). Each op is its ``bind_``
form called once, so both paths share every check and kernel call.
"""
from .._kernels._openmp import effective_n_threads
from ._checks import Window, window_output_size
from ._threads import at_most_threads
from .activations import (
    ACTIVATIONS,
    DEFAULT_ACTIVATION_ALPHA,
    activation_backward,
    activation_forward,
    bind_activation_backward,
)
from .conv import (
    bind_conv2d_backward_input,
    bind_conv2d_backward_params,
    bind_conv2d_forward,
    conv2d_backward_input,
    conv2d_backward_params,
    conv2d_forward,
)
from .attention import (
    attention_backward,
    attention_forward,
    bind_attention_backward,
    bind_attention_forward,
    bind_layer_norm_backward,
    bind_layer_norm_forward,
    bind_residual_add,
    layer_norm_backward,
    layer_norm_forward,
    residual_add,
)
from .dense import (
    bind_dense_backward_input,
    bind_dense_forward,
    bind_dense_param_grads,
    dense_backward_input,
    dense_forward,
    dense_param_grads,
)
from .dropout import bind_dropout, dropout_backward, dropout_forward
from .embedding import embedding_backward, embedding_indices
from .loss import (
    REGRESSION_LOSSES,
    regression_loss,
    sigmoid_cross_entropy,
    sigmoid_hellinger,
    softmax_cross_entropy,
    softmax_hellinger,
)
from .norm import (
    batchnorm_backward,
    batchnorm_inference,
    batchnorm_inv_std,
    batchnorm_train_forward,
    prelu_backward,
    prelu_forward,
)
from .optim import (
    adadelta_update,
    adagrad_update,
    adam_update,
    adamax_update,
    add_penalty,
    gradient_norm,
    rmsprop_update,
    sgd_update,
)
from .pool import (
    avgpool2d_backward,
    avgpool2d_forward,
    bind_maxpool2d_backward,
    bind_maxpool2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
)
from .cells import CELLS, Cell, get_cell
from .recurrent import (
    GATE_ACTIVATIONS,
    RecurrentState,
    recurrent_backward,
    recurrent_forward,
)

__all__ = [
    "Window",
    "ACTIVATIONS",
    "DEFAULT_ACTIVATION_ALPHA",
    "CELLS",
    "Cell",
    "GATE_ACTIVATIONS",
    "REGRESSION_LOSSES",
    "RecurrentState",
    "activation_backward",
    "activation_forward",
    "adadelta_update",
    "adagrad_update",
    "adam_update",
    "adamax_update",
    "add_penalty",
    "at_most_threads",
    "avgpool2d_backward",
    "avgpool2d_forward",
    "batchnorm_backward",
    "batchnorm_inference",
    "batchnorm_inv_std",
    "batchnorm_train_forward",
    "bind_activation_backward",
    "bind_conv2d_backward_input",
    "bind_conv2d_backward_params",
    "bind_conv2d_forward",
    "bind_dense_backward_input",
    "bind_dense_forward",
    "bind_dense_param_grads",
    "bind_dropout",
    "bind_maxpool2d_backward",
    "bind_maxpool2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_params",
    "conv2d_forward",
    "dense_backward_input",
    "dense_forward",
    "dense_param_grads",
    "dropout_backward",
    "dropout_forward",
    "effective_n_threads",
    "embedding_backward",
    "embedding_indices",
    "get_cell",
    "gradient_norm",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "prelu_backward",
    "prelu_forward",
    "recurrent_backward",
    "recurrent_forward",
    "regression_loss",
    "rmsprop_update",
    "sgd_update",
    "sigmoid_cross_entropy",
    "sigmoid_hellinger",
    "softmax_cross_entropy",
    "softmax_hellinger",
    "window_output_size",
]
