"""The alerts card's small forms."""

from django import forms


class SubscriptionForm(forms.Form):
    # The tenant the card was rendered for: a tab left open after switching company elsewhere
    # must not save the choice for the other one.
    company = forms.IntegerField(widget=forms.HiddenInput)
    digest = forms.BooleanField(required=False)
    immediate = forms.BooleanField(required=False)


class WebhookForm(forms.Form):
    company = forms.IntegerField(widget=forms.HiddenInput)
    url = forms.CharField(required=False, max_length=500, strip=True)
    enabled = forms.BooleanField(required=False)
    remove = forms.BooleanField(required=False)
