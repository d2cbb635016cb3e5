"""Dense, Sequential, initializers and activations."""

import numpy as np
import pytest

import nn
import tape
from tape import Tape


def test_dense_forward_and_shapes():
    layer = nn.Dense(3, activation="relu", seed=0)
    assert not layer.built and layer.variables == []
    x = np.random.default_rng(0).standard_normal((4, 5))
    y = layer(x)
    assert layer.built and y.dtype == np.float32 and y.shape == (4, 3)
    expected = np.maximum(x.astype(np.float32) @ layer.kernel.numpy() + layer.bias.numpy(), 0)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)
    assert layer.variables == [layer.kernel, layer.bias] == layer.trainable_variables
    assert nn.Dense(2, use_bias=False, input_dim=7).kernel.shape == (7, 2)


def test_dense_batches_over_leading_axes():
    layer = nn.Dense(2, seed=0, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    np.testing.assert_allclose(layer(x).numpy()[1], layer(x[1]).numpy())


def test_dense_gradients():
    layer = nn.Dense(3, activation="tanh", seed=0, dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((4, 5))
    tape.check_gradients(lambda x: layer(x), x, order=2)
    with Tape() as t:
        y = tape.sum(layer(x))
    assert [g.shape for g in t.gradient(y, layer.trainable_variables)] == [(5, 3), (3,)]


def test_dense_width_mismatch():
    layer = nn.Dense(3, input_dim=5)
    with pytest.raises(ValueError, match=r"width 4.*built for width 5"):
        layer(np.ones((2, 4)))


def test_initializers_are_seeded_and_scaled():
    a, b = nn.Dense(300, seed=1, input_dim=400), nn.Dense(300, seed=1, input_dim=400)
    assert np.array_equal(a.kernel.numpy(), b.kernel.numpy())
    assert not np.array_equal(a.kernel.numpy(), nn.Dense(300, seed=2, input_dim=400).kernel.numpy())
    assert a.kernel.numpy().std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    rng = np.random.default_rng(3)
    g = nn.Dense(300, kernel_initializer="glorot_uniform", rng=rng, input_dim=400).kernel.numpy()
    limit = np.sqrt(6 / 700)
    assert np.abs(g).max() <= limit and g.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    custom = nn.Dense(2, kernel_initializer=lambda shape, rng, dtype: np.full(shape, 0.5, dtype),
                      input_dim=3, dtype=np.float64)
    assert custom.kernel.dtype == np.float64 and (custom.kernel.numpy() == 0.5).all()
    with pytest.raises(ValueError, match="unknown initializer"):
        nn.Dense(2, kernel_initializer="nope")
    with pytest.raises(ValueError, match="either seed or rng"):
        nn.Dense(2, seed=0, rng=rng)
    stacked = nn.initializers.he_normal((50, 400, 30), rng)  # leading axis: 50 kernels
    assert stacked.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid", "softmax",
                                  "log_softmax"])
def test_activation_gradients(name):
    x = np.random.default_rng(4).standard_normal((3, 4))
    tape.check_gradients(getattr(nn, name), x, order=2)


def test_activation_values_and_layers():
    x = np.array([[-2.0, 0.5, 3.0]])
    assert nn.relu(x).numpy().tolist() == [[0, 0.5, 3]]
    np.testing.assert_allclose(nn.leaky_relu(x).numpy(), [[-0.4, 0.5, 3]])
    np.testing.assert_allclose(nn.softmax(x).numpy(), np.exp(x) / np.exp(x).sum())
    np.testing.assert_allclose(nn.log_softmax(x, axis=0).numpy(), 0)
    big = np.array([1e4, -1e4, 1e4 - 1])
    np.testing.assert_allclose(nn.sigmoid(big).numpy(), [1, 0, 1])
    np.testing.assert_allclose(nn.log_softmax(big).numpy()[[0, 2]],
                               [-np.log1p(np.exp(-1)), -1 - np.log1p(np.exp(-1))])
    for layer, fn in ((nn.ReLU(), nn.relu), (nn.Tanh(), nn.tanh), (nn.Sigmoid(), nn.sigmoid),
                      (nn.Softmax(), nn.softmax), (nn.LogSoftmax(), nn.log_softmax),
                      (nn.LeakyReLU(0.1), lambda v: nn.leaky_relu(v, 0.1)),
                      (nn.Activation("tanh"), nn.tanh)):
        np.testing.assert_array_equal(layer(x).numpy(), fn(x).numpy())
        assert layer.variables == []
    with pytest.raises(ValueError, match="unknown activation"):
        nn.Dense(2, activation="swishy")


def test_an_unknown_activation_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'swishy'; use one of \['elu', "
                                         r"'gelu', .*'tanh'\] or a callable or None"):
        nn.Activation("swishy")
    with pytest.raises(ValueError, match=r"unknown activation \['relu'\]; use one of"):
        nn.Dense(2, activation=["relu"])


def test_sequential_nesting_and_order():
    inner = nn.Sequential([nn.Dense(4, use_bias=False, seed=0), nn.BatchNorm(), nn.relu])
    model = nn.Sequential([inner, nn.Dense(2, seed=1)])
    assert model.variables == []
    model.build((None, 3))
    assert list(model.state_dict()) == ["0/0/kernel", "0/1/gamma", "0/1/beta",
                                        "0/1/moving_mean", "0/1/moving_variance",
                                        "1/kernel", "1/bias"]
    names = [v.name for v in model.trainable_variables]
    assert names == ["dense/kernel", "batch_norm/gamma", "batch_norm/beta", "dense/kernel",
                     "dense/bias"]
    assert [v.name for v in model.non_trainable_variables] == ["batch_norm/moving_mean",
                                                               "batch_norm/moving_variance"]
    assert model.trainable_variables == model.trainable_variables  # stable
    assert isinstance(model.layers[0].layers[2], nn.Activation)
    assert model(np.ones((5, 3)), training=True).shape == (5, 2)


def test_custom_module_with_shared_layer():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [nn.Dense(3, seed=0, activation="tanh")]
            self.again = self.blocks[0]  # shared: its variables count once
            self.head = {"out": nn.Dense(1, seed=1)}

        def call(self, x, training=False):
            return self.head["out"](self.again(self.blocks[0](x)))

    model = Twice()
    model(np.ones((2, 3)))
    assert list(model.state_dict()) == ["blocks/0/kernel", "blocks/0/bias", "head/out/kernel",
                                        "head/out/bias"]
    assert len(model.submodules) == 3


def test_a_module_without_call_is_rejected_when_defined():
    with pytest.raises(TypeError, match="must define call"):
        class NoForward(nn.Module):
            pass


# -- describing a model ---------------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Dense(8, seed=0)
        self.norm = nn.BatchNorm()
        self.out = nn.Dense(2, seed=1)

    def call(self, x, training=False):
        return self.out(tape.relu(self.norm(self.hidden(x), training=training)))


def test_class_names_become_keras_style_names():
    assert MLP().name == "mlp" and nn.BatchNorm().name == "batch_norm"
    assert nn.ReLU().name == "re_lu"


def test_summary_lists_layers_shapes_and_parameter_counts():
    lines = []
    model = MLP()
    model.summary(input_shape=(None, 3), print_fn=lines.append)
    text = lines[0]
    assert text.startswith('Model: "mlp"')
    rows = text.splitlines()
    assert rows[3].split() == ["hidden", "(Dense)", "(None,", "8)", "32"]
    assert rows[4].split() == ["norm", "(BatchNorm)", "(None,", "8)", "32"]
    assert rows[5].split() == ["out", "(Dense)", "(None,", "2)", "18"]
    assert rows[-3:] == ["Total params: 82", "Trainable params: 66", "Non-trainable params: 16"]
    assert model.count_params() == 82 == sum(v.size for v in model.variables)


def test_summary_of_a_sequential_shows_nested_shapes():
    lines = []
    inner = nn.Sequential([nn.Dense(4, seed=0), nn.ReLU()])
    model = nn.Sequential([inner, nn.Dense(2, seed=1)])
    model.summary(input_shape=(None, 3), print_fn=lines.append)
    rows = lines[0].splitlines()
    assert rows[3].split() == ["sequential", "(Sequential)", "(None,", "4)", "16"]
    assert rows[4].split() == ["dense", "(Dense)", "(None,", "2)", "10"]


def test_count_params_needs_built_layers():
    with pytest.raises(ValueError, match=r"mlp: count_params\(\) needs built layers, "
                                         r"and hidden, norm, out are not "
                                         r"built.*"
                                         r"model\.build\(input_shape\)"):
        MLP().count_params()


def test_a_model_repr_names_its_layers():
    model = nn.Sequential([nn.Dense(4, seed=0), nn.ReLU()], name="net")
    assert repr(model) == "<nn.Sequential 'net': Dense 'dense', ReLU 're_lu'>"
    assert repr(nn.Dense(2)) == "<nn.Dense 'dense' (not built)>"
