"""Small forms for the Problem Sync page: filters and bulk actions."""

from typing import Any

from django import forms

from sync.problems import REASONS
from sync.selectors import PROBLEM_TABS
from sync.services.actions import BULK_ACTIONS

AGE_CHOICES = [("", "Any age"), ("1d", "Older than 1 day"), ("7d", "Older than 7 days")]


class ProblemFilterForm(forms.Form):
    type = forms.ChoiceField(choices=PROBLEM_TABS, required=False)
    q = forms.CharField(
        required=False,
        max_length=100,
        label="Search",
        widget=forms.TextInput(
            attrs={
                "placeholder": "Doc #, customer, container, PO, reference or load #",
                "type": "search",
            }
        ),
    )
    reason = forms.ChoiceField(
        required=False,
        choices=[("", "Any reason")] + [(code, r.title) for code, r in REASONS.items()],
    )
    age = forms.ChoiceField(required=False, choices=AGE_CHOICES)
    sort = forms.CharField(required=False, max_length=20, widget=forms.HiddenInput)


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=list(BULK_ACTIONS.items()))
    type = forms.ChoiceField(choices=PROBLEM_TABS)
    ids = forms.TypedMultipleChoiceField(
        coerce=int,
        choices=(),
        required=False,
        error_messages={"required": "Select at least one record first."},
    )
    # Every record the page's filter matches (list_query), not only the boxes on this page.
    all_matching = forms.BooleanField(required=False)
    list_query = forms.CharField(required=False, max_length=1000)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None, "Form.clean returns cleaned_data"
        if not data.get("ids") and not data.get("all_matching") and not self.errors:
            raise forms.ValidationError("Select at least one record first.")
        return data

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any whole number is a candidate; the view keeps only this company's records.
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        ids = self.fields["ids"]
        assert isinstance(ids, forms.TypedMultipleChoiceField), "declared above"
        ids.choices = [(v, v) for v in raw if str(v).isdigit()]


RECONCILE_MAX_DAYS = 400  # a year and a little: a longer period is several reports


class ReconciliationForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="From")
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="To")
    party = forms.CharField(
        required=False,
        max_length=100,
        label="Customer or vendor",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name contains"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError("The period ends before it starts.")
            if (end - start).days > RECONCILE_MAX_DAYS:
                raise forms.ValidationError(
                    f"Choose a period of at most {RECONCILE_MAX_DAYS} days (one report each)."
                )
        return data
