"""edgernn.adopt on models written the way users' tutorials write them."""

import pytest
import torch
from torch import nn

import edgernn
from edgernn.runtime.errors import AdoptError


class LSTMNet(nn.Module):
    def __init__(self, input_size=3, hidden_size=16, num_layers=2, output_size=2, dropout=0.2):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.fc = nn.Linear(hidden_size, output_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(self.dropout(out[:, -1, :]))


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 12, 1, batch_first=True)
        self.fc = nn.Linear(12, 1)

    def forward(self, x):
        h0 = torch.zeros(1, x.size(0), 12)
        out, _ = self.gru(x, h0)
        return self.fc(out[:, -1, :])


class SentimentLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 10, batch_first=True)
        self.fc = nn.Linear(10, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        out, _ = self.lstm(self.embedding(x))
        return self.sigmoid(self.fc(out[:, -1, :]))


class SeqFirstRNN(nn.Module):
    """Time-major input, a prediction at every step, returns (out, hidden) like many tutorials."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(2, 6, nonlinearity="relu")
        self.fc = nn.Linear(6, 3)

    def forward(self, x, hidden=None):
        out, hidden = self.rnn(x, hidden)
        return self.fc(out), hidden


class PackedClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(30, 5)
        self.lstm = nn.LSTM(5, 7, batch_first=True)
        self.fc = nn.Linear(7, 2)

    def forward(self, text, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(text), lengths, batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        return self.fc(hidden[-1])


@pytest.mark.parametrize("cls, cell, head, task", [
    (LSTMNet, "lstm", "last", "regression"),
    (GRUNet, "gru", "last", "regression"),
    (SentimentLSTM, "lstm", "last", "classification"),
    (SeqFirstRNN, "rnn", "every", "regression"),
])
def test_adopt_recognises_tutorial_models(cls, cell, head, task):
    torch.manual_seed(0)
    source = cls().eval()
    model = edgernn.adopt(source)
    assert (model.config.cell, model.config.head, model.config.task) == (cell, head, task)
    gen = torch.Generator().manual_seed(1)
    if model.config.token_input:
        x = torch.randint(0, model.config.vocab_size, (4, 9), generator=gen)
        got = model.predict(x)
    elif cls is SeqFirstRNN:
        x = torch.randn(9, 4, 2, generator=gen)
        got = model.predict(x.transpose(0, 1)).transpose(0, 1)
    else:
        x = torch.randn(4, 9, source.fc.in_features and model.config.input_size, generator=gen)
        got = model.predict(x)
    with torch.no_grad():
        want = source(x)
    want = want[0] if isinstance(want, tuple) else want
    assert torch.allclose(got, want, atol=1e-6)


def test_adopt_packed_variable_length_model():
    torch.manual_seed(0)
    source = PackedClassifier()
    tokens = torch.randint(0, 30, (3, 6))
    lengths = torch.tensor([6, 4, 2])
    model = edgernn.adopt(source, example_input=(tokens, lengths))
    assert model.config.vocab_size == 30 and model.config.head == "last"
    with torch.no_grad():
        assert torch.allclose(model.predict(tokens, lengths), source(tokens, lengths), atol=1e-6)


class CNNLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.cnn = nn.Conv1d(3, 8, 3)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.fc = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc(self.lstm(self.cnn(x.transpose(1, 2)).transpose(1, 2))[0][:, -1])


class MeanPooled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=True)
        self.fc = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc(self.lstm(x)[0].mean(dim=1))


def test_adopt_refuses_unsupported_layers_by_name():
    with pytest.raises(AdoptError, match=r"CNNLSTM\.cnn is a Conv1d"):
        edgernn.adopt(CNNLSTM())


def test_adopt_refuses_a_forward_it_cannot_reproduce():
    with pytest.raises(AdoptError, match="differ by"):
        edgernn.adopt(MeanPooled())


def test_adopt_refuses_module_without_recurrent_layer():
    with pytest.raises(AdoptError, match="has no nn.RNN, nn.LSTM or nn.GRU layer"):
        edgernn.adopt(nn.Sequential(nn.Linear(3, 3)))
