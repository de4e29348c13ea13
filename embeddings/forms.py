"""The Retrain form of the admin: which backbone checkpoint, how many epochs, which blocks."""

from django import forms
from django.conf import settings

from .training_runs import backbone_checkpoints


class RetrainForm(forms.Form):
    pretrained = forms.ChoiceField(
        label="Backbone checkpoint",
        help_text="The configured one (OUTFITS_PRETRAINED) or another file in var/backbones/.",
    )
    epochs = forms.IntegerField(min_value=1, max_value=500, label="Epochs")
    unfrozen_blocks = forms.IntegerField(
        min_value=0,
        max_value=24,
        label="Unfrozen image blocks",
        help_text="The backbone's last blocks fine-tuned with the head; 0 keeps it frozen "
        "(fastest).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pretrained"].choices = [(path, path) for path in backbone_checkpoints()]
        self.fields["pretrained"].initial = settings.OUTFITS_PRETRAINED
        self.fields["epochs"].initial = settings.OUTFITS_TRAINING_EPOCHS
        self.fields["unfrozen_blocks"].initial = settings.OUTFITS_UNFROZEN_BLOCKS
