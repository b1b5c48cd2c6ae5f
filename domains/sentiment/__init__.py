"""Sentiment analysis: is a movie review positive or negative?

Data: IMDB reviews through TFDS, or local TSV/CSV files of text and a 0/1 label
(data.py; README.md). Model: a bag of words and bigrams into a small dense layer, or token
embeddings into a 1-D CNN or a bidirectional LSTM, then one sigmoid unit (model.py). Loss
and metrics (losses.py): binary cross-entropy, accuracy. A search optimises validation accuracy.
"""

from common.domain import Domain
from domains.sentiment import demo
from domains.sentiment.config import SentimentConfig
from domains.sentiment.data import DATA_FORMAT, load_data
from domains.sentiment.losses import loss, metrics
from domains.sentiment.model import build_model
from domains.sentiment.search_space import search_space


def describe_model(cfg: dict) -> str:
    if cfg["model"] == "ngram":
        return f"model=ngram, 1- to {cfg['ngrams']}-grams, {cfg['ngram_units']} units"
    return f"model={cfg['model']}, embedding_dim={cfg['embedding_dim']}"


DOMAIN = Domain(
    name="sentiment",
    config_cls=SentimentConfig,
    load_data=load_data,
    build_model=build_model,
    loss=loss,
    metrics=metrics,
    objective="val_accuracy",
    direction="max",
    search_space=search_space,
    data_format=DATA_FORMAT,
    write_demo_data=demo.write_demo_data,
    demo_overrides=demo.OVERRIDES,
    describe_model=describe_model,
)
