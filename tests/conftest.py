import random

import numpy as np
import pytest
import torch

# Tiny nets on two cores: one thread avoids oversubscription between workers.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
