# tulip-link on Google Cloud: gen2 functions from one source archive.
#   one webhook function per sender (senders.tf): public, authenticates callers itself
#            (WEBHOOK_AUTH), for a third-party system; publishes to the requests topic.
#   events:  private, fed by a Pub/Sub push subscription (OIDC) with a dead-letter topic.
# Files by concern: senders.tf, source.tf, secrets.tf, iam.tf, functions.tf, pubsub.tf,
# dedup.tf, monitoring.tf.
#
# A first apply in a new project races Google's eventual consistency in three places; each
# has a wait (time_sleep, created once, never on later applies): IAM grants take about two
# minutes to apply everywhere, a new log-based metric takes minutes before an alert may use
# it. See iam.tf and monitoring.tf, and infra/README.md for what a first deploy looks like.

resource "google_project_service" "enabled" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
  project = var.project_id
  service = each.value
  # Other workloads in the project may use these APIs too.
  disable_on_destroy = false
}

# Google's service agents exist only once something creates them; granting roles to a computed
# e-mail of an agent that does not exist yet fails. Creating them here makes them exist first
# (and needs no project number, so no plan-time read of the project).
resource "google_project_service_identity" "pubsub" {
  provider = google-beta
  project  = var.project_id
  service  = "pubsub.googleapis.com"

  depends_on = [google_project_service.enabled]
}

resource "google_project_service_identity" "eventarc" {
  provider = google-beta
  count    = var.use_eventarc_trigger ? 1 : 0
  project  = var.project_id
  service  = "eventarc.googleapis.com"

  depends_on = [google_project_service.enabled]
}

locals {
  # Settings both functions share; empty ones are left out (the code treats them as unset).
  common_env = {
    for name, value in {
      TULIP_BASE_URL               = var.tulip_base_url
      TULIP_WORKSPACE_ID           = var.tulip_workspace_id
      TULIP_TABLE_LINK_ID          = var.tulip_table_link_id
      TULIP_ALLOWED_TABLE_LINK_IDS = join(",", var.tulip_allowed_table_link_ids)
      SECRET_CACHE_TTL_SECONDS     = tostring(var.secret_cache_ttl_seconds)
      TULIP_DEADLINE_SECONDS       = tostring(var.tulip_deadline_seconds)
      GOOGLE_CLOUD_PROJECT         = var.project_id
      LOG_EXECUTION_ID             = "true"
    } : name => value if value != ""
  }

  # The Tulip token, for a function whose account may read it (iam.tf: secret_readers).
  token_env = {
    TULIP_CREDENTIALS_SECRET = google_secret_manager_secret.this["tulip_token"].id
  }

  # Each sender's webhook function: its own secret, settings and name (on every log line); the
  # Tulip token only where module.senders.token_readers says.
  sender_env = {
    for name, sender in local.senders : name => merge(local.common_env, contains(module.senders.token_readers, name) ? local.token_env : {}, {
      for setting, value in {
        WEBHOOK_SENDER            = name
        WEBHOOK_AUTH              = sender.auth
        WEBHOOK_SECRET            = google_secret_manager_secret.this["${name}_secret"].id
        WEBHOOK_TOLERANCE_SECONDS = tostring(sender.tolerance_seconds)
        WEBHOOK_SIGNATURE_HEADER  = sender.signature_header
        WEBHOOK_TOKEN_HEADER      = sender.token_header
        WEBHOOK_ALLOWED_ORIGINS   = join(",", sender.allowed_origins)
        LINK_MAPPING              = sender.link_mapping
        WEBHOOK_DELIVERY          = sender.delivery
        WEBHOOK_QUEUE_TOPIC       = sender.delivery == "queue" ? google_pubsub_topic.requests.id : ""
        MAX_BODY_BYTES            = tostring(sender.max_body_bytes)
        DEDUP_DATABASE            = var.dedup ? google_firestore_database.dedup[0].id : ""
      } : setting => value if value != ""
    })
  }

  # Cloud Run IAM admits only the push (or Eventarc) service account: no WEBHOOK_AUTH. A
  # message that needs a person is published to the dead-letter topic by the function itself.
  events_env = merge(local.common_env, local.token_env, {
    for name, value in {
      LINK_MAPPING                  = var.events_link_mapping
      DEAD_LETTER_TOPIC             = google_pubsub_topic.dead_letter.id
      TULIP_NOT_FOUND_RETRY_SECONDS = tostring(var.tulip_not_found_retry_seconds)
    } : name => value if value != ""
  })

  # Pub/Sub must wait for the function's answer before it redelivers.
  push_ack_deadline_seconds = var.function_timeout_seconds
}
