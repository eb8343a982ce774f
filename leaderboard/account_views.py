"""Sign-up, log-in (throttled), the account page (own submissions, daily quota) and API tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from leaderboard.auth import ThrottledAuthenticationForm
from leaderboard.forms import SignupForm, TokenForm, submissions_left_today
from leaderboard.models import ApiToken


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("account")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save(), backend="leaderboard.auth.ThrottledModelBackend")
        messages.success(request, "Welcome! Submit an endpoint, or create an API token below.")
        return redirect("account")
    return render(request, "leaderboard/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    """Django's log-in page with the throttled form; a refusal by the throttle answers 429 with Retry-After."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.throttled_for:
            response.status_code = 429
            response["Retry-After"] = str(form.throttled_for)
        return response


@login_required
def account(request: HttpRequest) -> HttpResponse:
    submissions = request.user.submissions.select_related("model", "benchmark").order_by("-created_at")
    return render(request, "leaderboard/account.html", {
        "page": Paginator(submissions, 25).get_page(request.GET.get("page")),
        "left": submissions_left_today(request.user),
        "per_day": settings.ACTBOARD_SUBMISSIONS_PER_DAY,
        "tokens": request.user.api_tokens.all(),
        "token_form": TokenForm(),
    })


@never_cache
@require_POST
@login_required
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the token a name and an expiry.")
        return redirect("account")
    token, raw = form.save(request.user)
    # The raw value is in this response only: the database keeps its hash.
    return render(request, "leaderboard/token_created.html", {"token": token, "raw": raw})


@require_POST
@login_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
        messages.success(request, f"Token '{token.name}' revoked.")
    return redirect("account")
