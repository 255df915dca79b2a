"""Networks built straight from layer specs, for the tests that drive the
network and layer level without an estimator."""
import numpy as np

from skdl._network import Network, build_layers


def initialized_network(specs, input_shape, dtype=np.float64, seed=0, side_inputs=None):
    """The network of ``specs`` on samples of ``input_shape``, its weights
    drawn from ``RandomState(seed)``; ``side_inputs`` ({name: shape}) adds
    inputs after the main one, which is then called "main"."""
    shapes = None if not side_inputs else {"main": tuple(input_shape), **side_inputs}
    net = Network(build_layers(specs, input_shape, dtype, side_inputs=side_inputs), dtype,
                  input_shapes=shapes)
    net.initialize(np.random.RandomState(seed))
    return net
