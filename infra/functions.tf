# Functions from one source, differing only in what `local.functions` says:
#   one per sender (its name is the key; "webhook" while `senders` is empty): reachable from the
#            internet, authenticates every caller itself (its auth, never none while public);
#            in queue mode (the default) publishes each link to the topic.
#   events:  internal ingress, invoked only by the push subscription (or the Eventarc trigger);
#            makes the Tulip calls.

locals {
  sender_functions = {
    for name, sender in local.senders : name => {
      description = "Links Tulip table records for signed webhooks from ${name == "webhook" ? "third-party systems" : "the sender ${name}"}."
      entry_point = "link_records"
      # Who may call it is IAM's business (public, or its invokers): iam.tf.
      ingress  = "ALLOW_ALL"
      env      = local.sender_env[name]
      eventarc = false
      memory   = module.senders.memory[name]
      public   = sender.public
      auth     = sender.auth
    }
  }

  events_function = {
    description = "Links Tulip table records for messages published to the requests topic."
    # link_records_push takes push envelopes; link_records_pubsub takes Eventarc's CloudEvents.
    entry_point = var.use_eventarc_trigger ? "link_records_pubsub" : "link_records_push"
    # Pub/Sub push and Eventarc from this project count as internal traffic.
    ingress  = "ALLOW_INTERNAL_ONLY"
    env      = local.events_env
    eventarc = var.use_eventarc_trigger
    memory   = var.memory
    public   = false
    auth     = "cloud-run-iam" # reads no WEBHOOK_AUTH: IAM admits only the push (or Eventarc) account
  }

  # No sender is named events (modules/senders refuses it).
  functions = merge(local.sender_functions, { events = local.events_function })
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
    available_memory                 = each.value.memory
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
      condition     = !(each.value.public && each.value.auth == "none")
      error_message = "The webhook function ${each.key} is public (webhook_public, or its sender's public) and must authenticate callers: its auth cannot be \"none\"."
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
    # Cloud Run: more memory needs more vCPUs (its memory limits page).
    precondition {
      condition     = tonumber(var.cpu) >= module.senders.min_cpu[each.key]
      error_message = "The function ${each.key} has ${each.value.memory} of memory, which needs ${module.senders.min_cpu[each.key]} vCPUs (Cloud Run: over 4 GiB needs 2, over 8 GiB 4, over 16 GiB 6, over 24 GiB 8): raise cpu, or lower its memory (max_body_bytes, or max_instance_request_concurrency)."
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
