# Two functions from one source, differing only in what `local.functions` says:
#   webhook: public, authenticates every caller itself (WEBHOOK_AUTH, never none while public);
#            in queue mode (webhook_delivery, the default) publishes each link to the topic.
#   events:  internal ingress, invoked only by the push subscription (or the Eventarc trigger);
#            makes the Tulip calls.

locals {
  functions = {
    webhook = {
      description = "Links Tulip table records for signed webhooks from third-party systems."
      entry_point = "link_records"
      ingress     = "ALLOW_ALL"
      env         = local.webhook_env
      eventarc    = false
    }
    events = {
      description = "Links Tulip table records for messages published to the requests topic."
      # link_records takes push envelopes; link_records_pubsub takes Eventarc's CloudEvents.
      entry_point = var.use_eventarc_trigger ? "link_records_pubsub" : "link_records"
      # Pub/Sub push and Eventarc from this project count as internal traffic.
      ingress  = "ALLOW_INTERNAL_ONLY"
      env      = local.events_env
      eventarc = var.use_eventarc_trigger
    }
  }
}

resource "google_cloudfunctions2_function" "link" {
  #checkov:skip=CKV_GCP_124:The webhook is public by design (third-party senders cannot mint Google identity tokens) and verifies each request itself; events is internal-only.
  for_each    = local.functions
  name        = "${var.name_prefix}-${each.key}"
  location    = var.region
  description = each.value.description
  labels      = var.labels

  build_config {
    runtime           = "python312"
    entry_point       = each.value.entry_point
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    ingress_settings                 = each.value.ingress
    service_account_email            = google_service_account.runtime[each.key].email
    environment_variables            = each.value.env
    timeout_seconds                  = var.function_timeout_seconds
    available_memory                 = var.memory
    available_cpu                    = var.cpu
    min_instance_count               = 0
    max_instance_count               = var.max_instance_count
    max_instance_request_concurrency = var.max_instance_request_concurrency
    all_traffic_on_latest_revision   = true
  }

  dynamic "event_trigger" {
    for_each = each.value.eventarc ? [google_pubsub_topic.requests.id] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = event_trigger.value
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.invoker.email
    }
  }

  lifecycle {
    precondition {
      condition     = !(var.webhook_public && var.webhook_auth == "none")
      error_message = "A public webhook function (webhook_public = true) must authenticate callers: webhook_auth cannot be \"none\"."
    }
    precondition {
      condition     = var.tulip_deadline_seconds < var.function_timeout_seconds
      error_message = "tulip_deadline_seconds must be below function_timeout_seconds, so the function answers before the platform cuts it off."
    }
    # Cloud Run: below 1 vCPU an instance serves one request at a time.
    precondition {
      condition     = tonumber(var.cpu) >= 1 || var.max_instance_request_concurrency == 1
      error_message = "cpu below 1 allows only max_instance_request_concurrency = 1 (Cloud Run needs a whole vCPU to serve requests concurrently): raise cpu to 1, or set max_instance_request_concurrency = 1."
    }
    # Event-driven functions (the Eventarc trigger) time out after at most 540 s.
    precondition {
      condition     = !(each.value.eventarc && var.function_timeout_seconds > 540)
      error_message = "With use_eventarc_trigger, function_timeout_seconds may be at most 540 (the limit of event-driven functions)."
    }
  }

  # After the build account's grants (and the runtime's secret access) are live: iam.tf.
  depends_on = [time_sleep.build_grants_live]
}
