# The secrets exist here; their values never do (nor in variables or state).
# Add values with `gcloud secrets versions add` (infra/README.md).

locals {
  secrets = {
    tulip_token    = "${var.name_prefix}-tulip-token"    # the Tulip API token
    webhook_secret = "${var.name_prefix}-webhook-secret" # the webhook signing secret(s) or token(s)
  }
}

resource "google_secret_manager_secret" "this" {
  for_each  = local.secrets
  secret_id = each.value
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

# The runtime account reads these two secrets and nothing else.
resource "google_secret_manager_secret_iam_member" "runtime_reads" {
  for_each  = google_secret_manager_secret.this
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}
