# The secrets exist here; their values never do (nor in variables or state).
# Add values with `gcloud secrets versions add` (infra/README.md).

locals {
  secrets = merge(
    { tulip_token = "${var.name_prefix}-tulip-token" }, # the Tulip API token
    # Each sender's signing secret(s) or token(s): <sender>_secret, <prefix>-<sender>-secret
    # ("webhook_secret", <prefix>-webhook-secret, while `senders` is empty).
    module.senders.secret_ids,
  )
}

locals {
  # Where the secrets' replicas live: the deployment's region unless told otherwise; [] for
  # automatic replication (the global location).
  secret_locations = var.secret_locations == null ? [var.region] : var.secret_locations
}

resource "google_secret_manager_secret" "this" {
  for_each  = local.secrets
  secret_id = each.value
  labels    = var.labels

  replication {
    dynamic "auto" {
      for_each = length(local.secret_locations) == 0 ? [true] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = length(local.secret_locations) == 0 ? [] : [true]
      content {
        dynamic "replicas" {
          for_each = local.secret_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  lifecycle {
    # Replication cannot change in place: a change would replace the secret and lose every
    # version (the values). A secret keeps the replication it was created with; deployments
    # made with automatic replication keep it.
    ignore_changes = [replication]
  }

  depends_on = [google_project_service.enabled]
}

# Which function's account reads which secret: each only what it uses, a sender its own secret
# and no other sender's (modules/senders).
resource "google_secret_manager_secret_iam_member" "runtime_reads" {
  for_each  = module.senders.secret_readers
  secret_id = google_secret_manager_secret.this[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime[each.value.function].member
}
