from django.urls import path

from leaderboard import views

urlpatterns = [
    path("", views.home, name="home"),
    path("b/<slug:slug>/", views.leaderboard, name="leaderboard"),
    path("s/<int:pk>/", views.submission_detail, name="submission"),
    path("s/<int:pk>/status.json", views.submission_status, name="submission-status"),
    path("s/<int:pk>/<str:action>/", views.submission_action, name="submission-action"),
    path("compare/", views.compare, name="compare"),
    path("submit/", views.submit, name="submit"),
    path("plotly.min.js", views.plotly_js, name="plotly-js"),
]
