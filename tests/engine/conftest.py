import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True)
def _default_scope():
    """Build children (data preprocessors, losses) in the mmseg scope."""
    init_default_scope('mmseg')
