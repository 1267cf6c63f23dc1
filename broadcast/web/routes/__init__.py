"""The web app's routes, one small module per page or webhook family."""
