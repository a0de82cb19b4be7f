import pytest
import torch

from tunecast.model.network import AttentionLSTM


def test_shapes_and_weights_sum_to_one():
    torch.manual_seed(0)
    net = AttentionLSTM(input_size=3, hidden_size=8, num_layers=2, horizon=4, dropout=0.1)
    x = torch.randn(5, 12, 3)  # (B, T, F)
    prediction, weights = net(x)
    assert prediction.shape == (5, 4)
    assert weights.shape == (5, 12)
    assert torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(5))


def test_attention_is_additive_softmax_over_time():
    torch.manual_seed(0)
    net = AttentionLSTM(input_size=1, hidden_size=6, num_layers=1, horizon=1)
    x = torch.randn(2, 7, 1)
    hidden, _ = net.lstm(x)
    scores = net.attention.score(torch.tanh(net.attention.proj(hidden))).squeeze(-1)
    expected = torch.softmax(scores, dim=1)
    _, weights = net(x)
    torch.testing.assert_close(weights, expected)


def test_window_norm_is_shift_and_scale_equivariant():
    torch.manual_seed(0)
    net = AttentionLSTM(input_size=1, hidden_size=8, num_layers=1, horizon=2, window_norm=True)
    net.eval()
    x = torch.randn(4, 10, 1)
    base, _ = net(x)
    shifted, _ = net(x * 3.0 + 100.0)
    torch.testing.assert_close(shifted, base * 3.0 + 100.0, rtol=1e-4, atol=1e-3)


def test_highway_adds_a_linear_autoregressive_term_over_the_target():
    torch.manual_seed(0)
    net = AttentionLSTM(input_size=2, hidden_size=8, num_layers=1, horizon=3, highway=True, window=10)
    net.eval()
    assert net.highway is not None and net.highway.weight.shape == (3, 10)
    x = torch.randn(4, 10, 2)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        prediction, _ = net(x)
        # only the highway is left: a linear map of the target column (feature 0), not feature 1
        torch.testing.assert_close(prediction, x[:, :, 0] @ net.highway.weight.T + net.highway.bias)
        changed = x.clone()
        changed[:, :, 1] += 5.0
        torch.testing.assert_close(net(changed)[0], prediction)


def test_highway_with_window_norm_stays_shift_and_scale_equivariant():
    torch.manual_seed(0)
    net = AttentionLSTM(1, 8, 1, 2, window_norm=True, highway=True, window=10)
    net.eval()
    x = torch.randn(4, 10, 1)
    base, _ = net(x)
    torch.testing.assert_close(net(x * 3.0 + 100.0)[0], base * 3.0 + 100.0, rtol=1e-4, atol=1e-3)


def test_highway_needs_the_window_length():
    with pytest.raises(ValueError, match="window"):
        AttentionLSTM(1, 8, 1, 1, highway=True)


def test_highway_starts_as_the_naive_forecast():
    torch.manual_seed(0)
    x = torch.randn(4, 10, 2) * 5.0 + 30.0
    last = x[:, -1:, 0].expand(4, 3)  # every step ahead repeats the window's last target value
    for window_norm in (False, True):
        net = AttentionLSTM(2, 8, 1, 3, window_norm=window_norm, highway=True, window=10,
                            highway_init="naive")
        net.eval()
        with torch.no_grad():  # silence the LSTM's part: what is left is the highway as initialised
            net.head.weight.zero_()
            net.head.bias.zero_()
            torch.testing.assert_close(net(x)[0], last, rtol=1e-5, atol=1e-4)
    torch.manual_seed(0)
    random = AttentionLSTM(2, 8, 1, 3, highway=True, window=10)  # the default
    torch.manual_seed(0)
    naive = AttentionLSTM(2, 8, 1, 3, highway=True, window=10, highway_init="naive")
    assert random.highway is not None and naive.highway is not None
    assert random.highway.weight[:, -1].abs().max() < 1.0 / 10**0.5 + 1e-6  # PyTorch's default bound
    # the same random stream: only the highway differs, so seeds give the same LSTM either way
    torch.testing.assert_close(random.lstm.weight_ih_l0, naive.lstm.weight_ih_l0)
    with pytest.raises(ValueError, match="highway_init"):
        AttentionLSTM(1, 8, 1, 1, highway=True, window=4, highway_init="zeros")
