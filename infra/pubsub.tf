# The requests topic: the webhook function publishes each link it accepted here (queue mode),
# and anyone may publish link requests (the same JSON the webhook takes). The push subscription
# delivers them to the events function, in order per ordering key (the webhook's messages carry
# their pair as the key); Pub/Sub retries anything not answered 2xx with backoff and, after
# max_delivery_attempts, moves it to the dead-letter topic, whose own subscription keeps it for
# 7 days (a topic without a subscription would drop it).

resource "google_pubsub_topic" "requests" {
  #checkov:skip=CKV_GCP_83:Messages hold table link and record ids only; Google-managed encryption is enough and a CMEK key ring is not worth owning here.
  name   = "${var.name_prefix}-requests"
  labels = var.labels

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Messages hold table link and record ids only; Google-managed encryption is enough and a CMEK key ring is not worth owning here.
  name   = "${var.name_prefix}-dead-letter"
  labels = var.labels

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_subscription" "push" {
  count  = var.use_eventarc_trigger ? 0 : 1
  name   = "${var.name_prefix}-push"
  topic  = google_pubsub_topic.requests.id
  labels = var.labels

  ack_deadline_seconds       = local.push_ack_deadline_seconds
  message_retention_duration = "604800s"
  # A link and a later unlink of one pair arrive in the order the webhook accepted them.
  enable_message_ordering = true

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = google_cloudfunctions2_function.link["events"].service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.link["events"].service_config[0].uri
    }
  }

  # Not before the push can be accepted (iam.tf) and a dead letter can be published.
  depends_on = [
    time_sleep.invoker_grant_live,
    google_pubsub_topic_iam_member.agent_publishes_dead_letters,
  ]
}

resource "google_pubsub_subscription" "dead_letter" {
  name   = "${var.name_prefix}-dead-letter"
  topic  = google_pubsub_topic.dead_letter.id
  labels = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = true

  expiration_policy {
    ttl = ""
  }
}
