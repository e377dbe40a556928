# Each delivery applied once (DEDUP_DATABASE, docs/operations.md): the webhook functions remember
# each delivery they accepted, by its sender and delivery id, in a Firestore database of this
# deployment's own, so that a delivery sent again is answered `duplicate` and changes nothing.
# A named database (never the project's `(default)`, which other workloads may use), in the
# deployment's region; its records expire through a TTL policy. `dedup = false` deploys without.

resource "google_firestore_database" "dedup" {
  count       = var.dedup ? 1 : 0
  project     = var.project_id
  name        = "${var.name_prefix}-dedup"
  location_id = var.region
  type        = "FIRESTORE_NATIVE"
  # What it holds is worth its window at most (DEDUP_WINDOW_SECONDS, 7 days), but deleting the
  # database by accident would accept every delivery again: protected; `terraform destroy`
  # leaves it.
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_DISABLED"

  depends_on = [google_project_service.enabled]
}

# Firestore deletes a record some time (typically within a day) after its `expiresAt`; the
# function treats an expired record as gone at once. The field is exempt from indexing, as
# Google advises for a TTL timestamp, which only grows.
resource "google_firestore_field" "dedup_expiry" {
  count      = var.dedup ? 1 : 0
  project    = var.project_id
  database   = google_firestore_database.dedup[0].name
  collection = "deliveries"
  field      = "expiresAt"

  ttl_config {}
  index_config {}
}

# Each sender's webhook function reads and writes records there, and nowhere else: Datastore
# User (Firestore's document access) on the project, limited by a condition to this database.
# There is no database-level IAM resource to grant it on. The events function gets nothing.
resource "google_project_iam_member" "webhook_remembers_deliveries" {
  for_each = var.dedup ? toset(keys(local.senders)) : toset([])
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = google_service_account.runtime[each.key].member

  condition {
    title       = "${var.name_prefix}-dedup only"
    description = "The deliveries this deployment's webhook functions accepted."
    expression  = "resource.name == \"${google_firestore_database.dedup[0].id}\""
  }
}
