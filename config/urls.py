from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("leaderboard.account_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("leaderboard.api_urls")),
    path("", include("leaderboard.download_urls")),
    path("", include("leaderboard.urls")),
]
