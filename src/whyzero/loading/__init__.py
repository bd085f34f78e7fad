"""Reading models, batches, labels, masks and training references from files."""

from whyzero.loading.data import load_inputs, load_labels, load_masks, load_train_reference
from whyzero.loading.models import LoadedModel, load_model

__all__ = ["LoadedModel", "load_model", "load_inputs", "load_labels", "load_masks", "load_train_reference"]
