"""What leaves the process: the Tulip client (with its attempt limit), Secret Manager (with its
cache) and the Tulip token read through it, the Pub/Sub publisher."""
