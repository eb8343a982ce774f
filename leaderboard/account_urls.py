from django.urls import path

from leaderboard import account_views

urlpatterns = [
    path("", account_views.account, name="account"),
    path("login/", account_views.LoginView.as_view(), name="login"),  # before django.contrib.auth's own
    path("signup/", account_views.signup, name="signup"),
    path("tokens/", account_views.token_create, name="token-create"),
    path("tokens/<int:pk>/revoke/", account_views.token_revoke, name="token-revoke"),
]
