output "project_id" {
  description = "The project everything is in (for gcloud --project)."
  value       = var.project_id
}

output "webhook_urls" {
  description = "Where each sender POSTs its webhooks, by sender name."
  value       = { for name, _ in local.senders : name => google_cloudfunctions2_function.link[name].service_config[0].uri }
}

output "webhook_url" {
  description = "The sender named webhook's URL (webhook_urls[\"webhook\"]): the one webhook while `senders` is empty; null when no sender is named webhook."
  value       = try(google_cloudfunctions2_function.link["webhook"].service_config[0].uri, null)
}

output "events_url" {
  description = "The private events function (reachable only through the topic)."
  value       = google_cloudfunctions2_function.link["events"].service_config[0].uri
}

output "function_names" {
  description = "The functions (and their Cloud Run services): each sender's by its name, and events."
  value       = { for key, function in google_cloudfunctions2_function.link : key => function.name }
}

output "requests_topic" {
  description = "Publish link requests here (full name, as gcloud takes it)."
  value       = google_pubsub_topic.requests.id
}

output "dead_letter_topic" {
  description = "Where requests go after max_delivery_attempts failed deliveries."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Holds dead letters for 7 days: pull them from here to inspect or replay."
  value       = google_pubsub_subscription.dead_letter.id
}

output "dedup_database" {
  description = "The Firestore database where the webhook functions remember the deliveries they accepted (DEDUP_DATABASE); empty with dedup = false."
  value       = var.dedup ? google_firestore_database.dedup[0].id : ""
}

output "dashboard_url" {
  description = "The Cloud Monitoring dashboard: links by outcome and errorCode, Tulip latency, the queue, the dead letters, instances and latency of each function."
  value       = "https://console.cloud.google.com/monitoring/dashboards/builder/${element(split("/", google_monitoring_dashboard.overview.id), 3)}?project=${var.project_id}"
}

output "service_accounts" {
  description = "The service accounts: each function's runtime account (by sender name, and events), the build's and the push invoker's."
  value = merge(
    { for key, account in google_service_account.runtime : key => account.email },
    { build = google_service_account.build.email, invoker = google_service_account.invoker.email },
  )
}

output "tulip_token_secret" {
  description = "Add the Tulip API token as a version of this secret."
  value       = google_secret_manager_secret.this["tulip_token"].id
}

output "webhook_secrets" {
  description = "Add each sender's signing secret (or token) as a version of its secret, by sender name."
  value       = { for name, _ in local.senders : name => google_secret_manager_secret.this["${name}_secret"].id }
}

output "webhook_secret" {
  description = "The sender named webhook's secret (webhook_secrets[\"webhook\"]): add the signing secret (or token) as a version of it. Null when no sender is named webhook."
  value       = try(google_secret_manager_secret.this["webhook_secret"].id, null)
}
