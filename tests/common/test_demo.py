"""The demo's generated datasets load through each domain's own local reader."""

from __future__ import annotations

import pytest

from common.domain import domain_names, get_domain


@pytest.mark.parametrize("name", domain_names())
def test_demo_data_loads_in_the_domains_local_format(tmp_path, name):
    domain = get_domain(name)
    data = domain.write_demo_data(tmp_path / name)
    cfg = domain.config_cls.smoke(data=str(data), **domain.demo_overrides)
    bundle = domain.load_data(cfg)
    assert bundle.train_examples >= cfg.batch_size * 2
    x, y = next(iter(bundle.train))
    assert len(y) == cfg.batch_size
    assert bundle.test is not None
