# The secrets exist here; their values never do (nor in variables or state).
# Add values with `gcloud secrets versions add` (infra/README.md).

resource "google_secret_manager_secret" "tulip_token" {
  secret_id = "${var.name_prefix}-tulip-token"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret" "webhook_secret" {
  secret_id = "${var.name_prefix}-webhook-secret"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "runtime_reads_tulip_token" {
  secret_id = google_secret_manager_secret.tulip_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}

resource "google_secret_manager_secret_iam_member" "runtime_reads_webhook_secret" {
  secret_id = google_secret_manager_secret.webhook_secret.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}
