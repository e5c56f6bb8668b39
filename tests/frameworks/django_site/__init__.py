"""A Django project with Channels, served by asgiws as
`tests.frameworks.django_site.asgi:application`."""
