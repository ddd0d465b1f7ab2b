//! The demo's small AWS estate, created in an emulator (moto) through the
//! real AWS SDK, and a snapshot of its state for before/after tables.

use std::collections::BTreeMap;

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_eks::types::NodegroupScalingConfig;

/// Creates the demo estate: four EC2 instances (three `env=dev role=batch`,
/// one of them stopped already, and one `env=prod` that the plan must not
/// touch), the RDS instance `orders-db`, the Aurora cluster `analytics` with
/// one member, and the EKS cluster `demo` with node groups `general` and
/// `spot`.
pub async fn create(config: &SdkConfig) -> anyhow::Result<()> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let mut stopped_already = None;
    for (name, env) in [
        ("batch-1", "dev"),
        ("batch-2", "dev"),
        ("batch-3", "dev"),
        ("prod-batch", "prod"),
    ] {
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key("Name").value(name).build())
            .tags(Tag::builder().key("env").value(env).build())
            .tags(Tag::builder().key("role").value("batch").build())
            .build();
        let out = ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(tags)
            .send()
            .await
            .context("ec2:RunInstances")?;
        if name == "batch-3" {
            stopped_already = out
                .instances()
                .first()
                .and_then(|i| i.instance_id().map(str::to_string));
        }
    }
    if let Some(id) = stopped_already {
        ec2.stop_instances()
            .instance_ids(id)
            .send()
            .await
            .context("ec2:StopInstances")?;
    }

    let rds = aws_sdk_rds::Client::new(config);
    rds.create_db_instance()
        .db_instance_identifier("orders-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .master_username("demo")
        .master_user_password("demo-password-1")
        .allocated_storage(20)
        .send()
        .await
        .context("rds:CreateDBInstance")?;
    rds.create_db_cluster()
        .db_cluster_identifier("analytics")
        .engine("aurora-postgresql")
        .master_username("demo")
        .master_user_password("demo-password-1")
        .send()
        .await
        .context("rds:CreateDBCluster")?;
    rds.create_db_instance()
        .db_instance_identifier("analytics-1")
        .db_cluster_identifier("analytics")
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .context("rds:CreateDBInstance (Aurora member)")?;

    let eks = aws_sdk_eks::Client::new(config);
    eks.create_cluster()
        .name("demo")
        .role_arn("arn:aws:iam::123456789012:role/eks-demo")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-demo")
                .build(),
        )
        .send()
        .await
        .context("eks:CreateCluster")?;
    for (name, min, desired, max) in [("general", 1, 2, 5), ("spot", 0, 3, 3)] {
        eks.create_nodegroup()
            .cluster_name("demo")
            .nodegroup_name(name)
            .node_role("arn:aws:iam::123456789012:role/eks-nodes")
            .subnets("subnet-demo")
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(min)
                    .desired_size(desired)
                    .max_size(max)
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("eks:CreateNodegroup {name}"))?;
    }
    Ok(())
}

/// Resource name → human state, e.g. `ec2 batch-1` → `running`,
/// `eks demo/general` → `min 1 / desired 2 / max 5`.
pub async fn snapshot(config: &SdkConfig) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let ec2 = aws_sdk_ec2::Client::new(config);
    let mut pages = ec2.describe_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.context("ec2:DescribeInstances")?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            let name = instance
                .tags()
                .iter()
                .find(|t| t.key() == Some("Name"))
                .and_then(|t| t.value())
                .or(instance.instance_id())
                .unwrap_or("?");
            let state = instance
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            out.insert(format!("ec2 {name}"), state);
        }
    }
    let rds = aws_sdk_rds::Client::new(config);
    let mut pages = rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.context("rds:DescribeDBInstances")?;
        for db in page.db_instances() {
            let member = db
                .db_cluster_identifier()
                .map(|c| format!(" (member of {c})"));
            out.insert(
                format!("rds {}", db.db_instance_identifier().unwrap_or("?")),
                format!(
                    "{}{}",
                    db.db_instance_status().unwrap_or("?"),
                    member.unwrap_or_default()
                ),
            );
        }
    }
    let mut pages = rds.describe_db_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.context("rds:DescribeDBClusters")?;
        for cluster in page.db_clusters() {
            out.insert(
                format!("aurora {}", cluster.db_cluster_identifier().unwrap_or("?")),
                cluster.status().unwrap_or("?").to_string(),
            );
        }
    }
    let eks = aws_sdk_eks::Client::new(config);
    for group in ["general", "spot"] {
        let described = eks
            .describe_nodegroup()
            .cluster_name("demo")
            .nodegroup_name(group)
            .send()
            .await
            .with_context(|| format!("eks:DescribeNodegroup {group}"))?;
        let scaling = described.nodegroup().and_then(|n| n.scaling_config());
        let show = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
        out.insert(
            format!("eks demo/{group}"),
            format!(
                "min {} / desired {} / max {}",
                show(scaling.and_then(|s| s.min_size())),
                show(scaling.and_then(|s| s.desired_size())),
                show(scaling.and_then(|s| s.max_size()))
            ),
        );
    }
    Ok(out)
}
