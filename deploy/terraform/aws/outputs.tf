# Read by scripts that hand these to Bulwark (`terraform output -json`):
# the names are a contract.

output "repository" {
  description = "The repository for Bulwark (and restic): -r, BULWARK_REPOSITORY or a [[backup]] repository."
  # An explicit https endpoint: Bulwark and restic both read it as
  # endpoint + bucket + prefix (`s3:BUCKET/...` would be a host to restic).
  value = "s3:https://s3.${var.region}.amazonaws.com/${aws_s3_bucket.repository.bucket}/${var.prefix}"
}

output "region" {
  description = "The bucket's region: give it to Bulwark as AWS_REGION (or -o s3.region=), since requests are signed for it."
  value       = var.region
}

output "bucket_name" {
  description = "The repository bucket."
  value       = aws_s3_bucket.repository.bucket
}

output "kms_key_arn" {
  description = "The bucket's customer-managed key (the bucket encrypts with it by default; -o s3.kms-key-id= names it on every upload too)."
  value       = aws_kms_key.repository.arn
}

output "role_arn" {
  description = "The role Bulwark assumes (instance profile, GitHub OIDC or sts:AssumeRole)."
  value       = aws_iam_role.bulwark.arn
}

output "instance_profile_name" {
  description = "Instance profile of the role for EC2 hosts; null unless trusted_services has ec2.amazonaws.com."
  value       = one(aws_iam_instance_profile.bulwark[*].name)
}

output "access_key_id" {
  description = "AWS_ACCESS_KEY_ID of the optional user; null unless create_access_key."
  value       = one(aws_iam_access_key.bulwark[*].id)
}

output "secret_access_key" {
  description = "AWS_SECRET_ACCESS_KEY of the optional user; null unless create_access_key."
  value       = one(aws_iam_access_key.bulwark[*].secret)
  sensitive   = true
}
