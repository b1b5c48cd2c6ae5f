"""Translation: a small Transformer encoder-decoder, scored with sacreBLEU.

The Transformer is the model whose training made the warmup-then-inverse-square-root
schedule famous; this domain trains one on `ted_hrlr_translate/pt_to_en` (TFDS) or
local parallel text and shows what the schedule does for it.
"""

from common.domain import Domain
from domains.translation.config import TranslationConfig
from domains.translation.data import load_data
from domains.translation.evaluate import evaluate_extra
from domains.translation.model import build_model, loss, metrics
from domains.translation.search_space import search_space

DOMAIN = Domain(
    name="translation",
    config_cls=TranslationConfig,
    load_data=load_data,
    build_model=build_model,
    loss=loss,
    metrics=metrics,
    objective="val_loss",
    direction="min",
    evaluate_extra=evaluate_extra,
    search_space=search_space,
)
