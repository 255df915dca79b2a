"""Pathways that split from the main path and merge back, and side inputs
merged into it (pydnn's pathways and ``merge_data_channel``)."""
from abc import abstractmethod
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import StrOptions

from ._base import Layer, LayerSpec, backward_chain, forward_chain, walk_layers

MERGES = ("concat", "add", "multiply", "average")


class ContainerSpec(LayerSpec):
    """A spec whose runtime layer runs other layers inside it.

    Building one needs the network's :class:`skdl._network.BuildContext`
    (unique names, side inputs); :meth:`build` outside a network makes a
    fresh context.
    """

    def _build(self, input_shape, dtype, name):
        from .._network import BuildContext  # the network module imports this one

        return self._build_in(BuildContext(dtype, taken_names=[name]), input_shape, name)

    def build_in(self, context, input_shape, name):
        """Validate the hyper-parameters and build the layer within a network.

        The nested specs are built through ``context``.

        Parameters
        ----------
        context : skdl._network.BuildContext
            The network's build context: it hands out unique names to the
            nested layers and knows the network's side inputs.
        input_shape : tuple of int
            Shape of one sample arriving at this layer.
        name : str
            The layer's name.

        Returns
        -------
        Layer
            The runtime layer, holding the nested layers it built.
        """
        self._validate_params()
        return self._build_in(context, tuple(int(s) for s in input_shape), name)

    @abstractmethod
    def _build_in(self, context, input_shape, name):
        """The runtime layer, for validated hyper-parameters."""


def _sample_axis(axis, shapes, what):
    """Position, in the sample shape, of the batch axis ``axis``."""
    if not isinstance(axis, Integral) or isinstance(axis, bool):
        raise TypeError(f"{what}: axis must be an int, got {axis!r}.")
    rank = len(shapes[0])
    position = axis - 1 if axis > 0 else rank + axis
    if axis == 0 or not 0 <= position < rank:
        raise ValueError(
            f"{what}: axis={axis} is not an axis of the outputs to concatenate, "
            f"of shapes {shapes}; batches have shape (n, *shape), so axis must be "
            f"in 1..{rank} or -{rank}..-1 (0 is the batch)."
        )
    return position


def merged_shape(shapes, merge, axis, what):
    """Shape of one sample after merging outputs of ``shapes``.

    Parameters
    ----------
    shapes : list of tuple of int
        Per-sample shapes of the outputs to merge.
    merge : {'concat', 'add', 'multiply', 'average'}
    axis : int
        For 'concat': the batch axis to join along (1 is the first axis of a
        sample, -1 its last).
    what : str
        How errors name the layer.

    Returns
    -------
    shape : tuple of int
    position : int or None
        The sample axis of a concatenation.
    """
    if merge != "concat":
        if len(set(shapes)) > 1:
            raise ValueError(
                f"{what} cannot {merge} outputs of shapes {shapes}: {merge!r} needs "
                "equal shapes. Make the branches end in the same shape, or use "
                "merge='concat'."
            )
        return shapes[0], None
    if len({len(s) for s in shapes}) > 1:
        raise ValueError(
            f"{what} cannot concatenate outputs of shapes {shapes}: they have "
            "different numbers of axes. Flatten or reshape the branches first."
        )
    position = _sample_axis(axis, shapes, what)
    others = {s[:position] + s[position + 1:] for s in shapes}
    if len(others) > 1:
        raise ValueError(
            f"{what} cannot concatenate outputs of shapes {shapes} along axis "
            f"{axis}: every other axis must have the same size."
        )
    size = sum(s[position] for s in shapes)
    shape = shapes[0]
    return shape[:position] + (size,) + shape[position + 1:], position


class MergeLayer(Layer):
    """Runtime state of :class:`Pathways` and :class:`MergeInput`: branches of
    layers, each fed by the incoming batch or by a side input, whose outputs
    are merged.

    Parameters
    ----------
    name : str
    input_shape : tuple of int
    branches : list of (str or None, tuple of int, list of Layer)
        Each branch's source (None: the layer's input; else the name of a
        side input), the shape of one sample of it, and the branch's layers
        (none: the source itself).
    merge : {'concat', 'add', 'multiply', 'average'}
    axis : int
    dtype : numpy dtype
    kind : str
        The spec's class name, for summaries and errors.
    """

    takes_inputs = True
    takes_sample_weight = True

    def __init__(self, name, input_shape, branches, merge, axis, dtype, kind):
        what = f"{kind} {name!r}"
        shapes = [layers[-1].output_shape if layers else tuple(shape)
                  for _, shape, layers in branches]
        output_shape, self.position = merged_shape(shapes, merge, axis, what)
        super().__init__(name, input_shape, output_shape, dtype)
        self.kind = kind
        self.branches = [(source, layers) for source, _, layers in branches]
        self.branch_shapes = shapes
        self.merge = merge
        # A mask over the steps still applies after the merge when every path
        # is fed by the incoming batch and acts on each step alone.
        self.passes_mask = all(
            source is None and all(layer.passes_mask for layer in walk_layers(layers))
            for source, _, layers in branches)
        self._cache = None

    def sublayers(self):
        return [layer for _, layers in self.branches for layer in layers]

    def forward(self, X, training=False, rng=None, mask=None, sample_weight=None,
                inputs=None, taps=None):
        outputs = []
        for source, layers in self.branches:
            if source is None:
                Y, _ = forward_chain(layers, X, training, rng, mask, sample_weight,
                                     inputs, taps)
            else:
                Y, _ = forward_chain(layers, inputs[source], training, rng, None,
                                     sample_weight, inputs, taps)
            outputs.append(Y)
        if training and self.merge == "multiply":
            self._cache = outputs
        return self._merge(outputs)

    def _merge(self, outputs):
        if self.merge == "concat":
            return np.concatenate(outputs, axis=self.position + 1)
        if self.merge == "multiply":
            return self._product(outputs)
        total = outputs[0] + outputs[1]  # a new array: the outputs stay as they are
        for Y in outputs[2:]:
            total += Y
        if self.merge == "average":
            total /= len(outputs)
        return total

    @staticmethod
    def _product(outputs, skip=None):
        """Product of the outputs, leaving out the one at index ``skip``."""
        factors = [Y for i, Y in enumerate(outputs) if i != skip]
        total = factors[0].copy() if len(factors) == 1 else factors[0] * factors[1]
        for Y in factors[2:]:
            total *= Y
        return total

    def _output_grads(self, dY):
        """The gradient reaching each branch's output."""
        k = len(self.branches)
        if self.merge == "concat":
            ends = np.cumsum([s[self.position] for s in self.branch_shapes])[:-1]
            return np.split(dY, ends, axis=self.position + 1)
        if self.merge == "add":
            return [dY] * k
        if self.merge == "average":
            return [dY / k] * k
        outputs = self._cache
        return [dY * self._product(outputs, skip=i) for i in range(k)]

    def backward(self, dY, context, need_input_grad=True):
        # Last branch first, as forward ran them the other way: a branch may
        # read a layer's output of an earlier one (a recurrent layer's
        # initial_state), whose gradient must be in before that layer's turn.
        inputs = [None] * len(self.branches)
        grads = self._output_grads(dY)
        for i in range(len(self.branches) - 1, -1, -1):
            source, layers = self.branches[i]
            need = need_input_grad and source is None
            if not layers and not need:
                continue
            d = backward_chain(layers, grads[i], context, need)
            if need:
                inputs[i] = d
        # Summed in branch order, as before branches ran backward reversed.
        dX = None
        for d in inputs:
            if d is not None:
                dX = d if dX is None else dX + d
        return dX

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """The merge's own work: none for a concatenation, one operation per
        output value and extra branch for the others (plus the division of
        an average)."""
        if self.merge == "concat":
            return 0
        size = int(np.prod(self.output_shape))
        extra = size if self.merge == "average" else 0
        return (len(self.branches) - 1) * size + extra


class Pathways(ContainerSpec):
    """Parallel branches of layers fed by the same input, merged back.

    pydnn's pathways: the path splits, each branch has its own layers, and
    their outputs are merged into one. An empty branch passes the input on
    unchanged, so ``Pathways([[], [Conv2D(8, 3, padding='same'),
    Conv2D(8, 3, padding='same')]], merge='add')`` is a residual block.
    Branches nest: a branch may hold another ``Pathways``.

    Parameters
    ----------
    branches : list of lists of layer specs
        At least two branches. Their layers' names are unique across the
        network, so their hyper-parameters are searchable by name
        (``layers__<name>__<parameter>``).
    merge : {'concat', 'add', 'multiply', 'average'}, default='concat'
        'concat' joins the outputs along ``axis``; the others combine them
        elementwise and need equal output shapes.
    axis : int, default=1
        For 'concat', the axis of the batch ``(n, *shape)`` to join along:
        1 is the channel axis of images ``(n, C, H, W)`` and signals
        ``(n, C, L)`` and the feature axis of flat samples; use -1 for the
        features of sequences ``(n, steps, features)``.
    name : str or None, default=None

    Notes
    -----
    The layer has no parameters of its own; its branches' layers appear in
    ``get_weights`` under their own names.
    """

    _parameter_constraints = {
        "branches": [list, tuple],
        "merge": [StrOptions(set(MERGES))],
        "axis": [Integral],
        "name": [str, None],
    }

    def __init__(self, branches, merge="concat", axis=1, name=None):
        self.branches = branches
        self.merge = merge
        self.axis = axis
        self.name = name

    def _branch_lists(self, what):
        if len(self.branches) < 2:
            raise ValueError(
                f"{what} needs at least two branches, got {len(self.branches)}. "
                "An empty branch [] passes the input on unchanged."
            )
        for i, branch in enumerate(self.branches):
            if not isinstance(branch, (list, tuple)):
                raise TypeError(
                    f"{what}: branches[{i}] must be a list of layer specs (possibly "
                    f"empty), got {branch!r}."
                )
        return self.branches

    def children(self):
        """The layer specs of every branch, branch after branch, in build order.

        Returns
        -------
        list of LayerSpec
            Nested ``Pathways`` are listed themselves, not their own children.
        """
        return [spec for branch in self.branches if isinstance(branch, (list, tuple))
                for spec in branch if isinstance(spec, LayerSpec)]

    def _build_in(self, context, input_shape, name):
        what = f"Pathways {name!r}"
        branches, sequences = [], []
        for i, branch in enumerate(self._branch_lists(what)):
            layers = context.build(branch, input_shape, where=f"{what} branches[{i}]")
            branches.append((None, input_shape, layers))
            sequences.append(context.sequence_output)
        layer = MergeLayer(name, input_shape, branches, self.merge, self.axis,
                           context.dtype, "Pathways")
        # Sequences merged (either axis) are a sequence; anything else is not.
        layer.output_is_sequence = all(sequences) and len(layer.output_shape) == 2
        return layer


class MergeInput(ContainerSpec):
    """Merge a side input of the network into the main path.

    pydnn's ``merge_data_channel``: data that is not part of the main input
    (the original size of an image that was resized, metadata of a signal)
    joins the network after, say, the convolutions. The side input may first
    go through layers of its own.

    Parameters
    ----------
    input_name : str
        A side input declared in the estimator's ``input_shape`` dict.
    layers : list of layer specs or None, default=None
        Layers applied to the side input before the merge (None: none).
    merge : {'concat', 'add', 'multiply', 'average'}, default='concat'
    axis : int, default=1
        See :class:`Pathways`; a flat path ``(n, features)`` joins along 1.
    name : str or None, default=None

    Examples
    --------
    >>> from skdl import NNClassifier
    >>> from skdl.layers import Conv2D, Dense, Flatten, MaxPool2D, MergeInput
    >>> clf = NNClassifier(
    ...     layers=[Conv2D(8, 3, padding='same', activation='relu'), MaxPool2D(2),
    ...             Flatten(), MergeInput('size'), Dense(32, activation='relu')],
    ...     input_shape={'image': (1, 8, 8), 'size': (2,)})
    """

    _parameter_constraints = {
        "input_name": [str],
        "layers": [list, tuple, None],
        "merge": [StrOptions(set(MERGES))],
        "axis": [Integral],
        "name": [str, None],
    }

    def __init__(self, input_name, layers=None, merge="concat", axis=1, name=None):
        self.input_name = input_name
        self.layers = layers
        self.merge = merge
        self.axis = axis
        self.name = name

    def children(self):
        """The layer specs applied to the side input, in build order.

        Returns
        -------
        list of LayerSpec
            Empty when ``layers`` is None or empty.
        """
        return [spec for spec in (self.layers or []) if isinstance(spec, LayerSpec)]

    def _build_in(self, context, input_shape, name):
        what = f"MergeInput {name!r}"
        shape = context.side_input_shape(self.input_name, what)
        side = context.build(list(self.layers or []), shape, where=f"{what} layers")
        branches = [(None, input_shape, []), (self.input_name, shape, side)]
        return MergeLayer(name, input_shape, branches, self.merge, self.axis,
                          context.dtype, "MergeInput")


def replace_spec(specs, old, new):
    """``specs`` as a new list with the spec object ``old`` replaced by
    ``new``, wherever it is nested (the pathways and side-input specs that
    hold it get new lists of layers)."""
    replaced = []
    for spec in specs:
        if spec is old:
            spec = new
        elif isinstance(spec, Pathways):
            spec.branches = [replace_spec(branch, old, new)
                             if isinstance(branch, (list, tuple)) else branch
                             for branch in spec.branches]
        elif isinstance(spec, MergeInput) and spec.layers:
            spec.layers = replace_spec(spec.layers, old, new)
        replaced.append(spec)
    return replaced
