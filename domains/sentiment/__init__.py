"""Sentiment analysis: is a movie review positive or negative?"""

from common.domain import Domain
from domains.sentiment.config import SentimentConfig
from domains.sentiment.data import DATA_FORMAT, load_data
from domains.sentiment.model import build_model, loss, metrics
from domains.sentiment.search_space import search_space

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
)
