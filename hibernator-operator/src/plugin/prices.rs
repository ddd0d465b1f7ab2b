//! The price table of `report --prices`: a ConfigMap of `$/hour` per
//! resource class (see `docs/savings-report.md`).

use std::collections::BTreeMap;

use hibernator_core::types::UNCLASSIFIED;
use k8s_openapi::api::core::v1::ConfigMap;

use super::{Connection, PluginError};

/// Hourly prices by class key (`ec2.m5.large`, `rds.db.r6g.large`, …).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceTable {
    /// `namespace/name` of the ConfigMap.
    pub source: String,
    /// Price per hour of one resource of the class.
    pub prices: BTreeMap<String, f64>,
}

/// Estimated savings of some resource-seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Savings {
    /// Sum over the priced classes.
    pub priced: f64,
    /// Classes with hibernated resource-seconds but no price.
    pub unpriced: Vec<String>,
}

impl Savings {
    /// The amount when every class had a price.
    pub fn amount(&self) -> Option<f64> {
        self.unpriced.is_empty().then_some(self.priced)
    }

    /// Adds another estimate.
    pub fn add(&mut self, other: &Savings) {
        self.priced += other.priced;
        for class in &other.unpriced {
            if !self.unpriced.contains(class) {
                self.unpriced.push(class.clone());
            }
        }
        self.unpriced.sort();
    }
}

impl PriceTable {
    /// Parses the data of a price ConfigMap. Every key is `<type>.<class>`
    /// and every value a non-negative decimal; the error names the key.
    pub fn parse(source: &str, data: &BTreeMap<String, String>) -> Result<Self, PluginError> {
        let mut prices = BTreeMap::new();
        for (key, value) in data {
            let invalid = |message: &str| PluginError::InvalidPrice {
                config_map: source.to_string(),
                key: key.clone(),
                value: value.clone(),
                message: message.to_string(),
            };
            let Some((kind, class)) = key.split_once('.') else {
                return Err(invalid(
                    "keys are <type>.<class>, e.g. ec2.m5.large or rds.db.r6g.large",
                ));
            };
            if kind.is_empty() || class.is_empty() {
                return Err(invalid(
                    "keys are <type>.<class>, e.g. ec2.m5.large or rds.db.r6g.large",
                ));
            }
            let price: f64 = value
                .trim()
                .parse()
                .map_err(|_| invalid("not a decimal number of dollars per hour"))?;
            if !price.is_finite() || price < 0.0 {
                return Err(invalid("must be a finite number >= 0"));
            }
            prices.insert(key.clone(), price);
        }
        Ok(PriceTable {
            source: source.to_string(),
            prices,
        })
    }

    /// Savings of resource-seconds per class: `seconds / 3600 × price`.
    pub fn savings(&self, resource_seconds: &BTreeMap<String, u64>) -> Savings {
        let mut savings = Savings::default();
        for (class, seconds) in resource_seconds {
            if *seconds == 0 {
                continue;
            }
            match self.prices.get(class).filter(|_| class != UNCLASSIFIED) {
                Some(price) => savings.priced += *seconds as f64 / 3600.0 * price,
                None => savings.unpriced.push(class.clone()),
            }
        }
        savings
    }
}

/// Reads the price ConfigMap `reference` (`name`, or `namespace/name`; a
/// bare name is looked up in the command's namespace).
pub(super) async fn read(conn: &Connection, reference: &str) -> Result<PriceTable, PluginError> {
    let (namespace, name) = match reference.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (conn.namespace.clone(), reference.to_string()),
    };
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(conn.client.clone(), &namespace);
    let config_map = api
        .get_opt(&name)
        .await
        .map_err(|e| PluginError::api(format!("get price ConfigMap {namespace}/{name}"), e))?;
    let Some(config_map) = config_map else {
        return Err(PluginError::NotFound {
            kind: "ConfigMap".to_string(),
            name,
            namespace,
        });
    };
    PriceTable::parse(
        &format!("{namespace}/{name}"),
        &config_map.data.unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Result<PriceTable, PluginError> {
        let data = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        PriceTable::parse("ops/prices", &data)
    }

    #[test]
    fn bad_values_name_the_key() {
        for (key, value, needle) in [
            ("ec2.m5.large", "cheap", "not a decimal"),
            ("ec2.m5.large", "-1", ">= 0"),
            ("ec2.m5.large", "NaN", "finite"),
            ("m5large", "0.1", "<type>.<class>"),
            (".m5", "0.1", "<type>.<class>"),
        ] {
            let error = table(&[("rds.db.t3.micro", "0.02"), (key, value)])
                .unwrap_err()
                .to_string();
            assert!(error.contains(key), "{error}");
            assert!(error.contains("ops/prices"), "{error}");
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn savings_never_invent_a_price() {
        let prices = table(&[("ec2.m5.large", "0.096"), ("rds.db.r6g.large", " 0.26 ")]).unwrap();
        let seconds: BTreeMap<String, u64> = [
            ("ec2.m5.large".to_string(), 2 * 36_000),
            ("rds.db.r6g.large".to_string(), 36_000),
        ]
        .into();
        let s = prices.savings(&seconds);
        assert_eq!(s.unpriced, Vec::<String>::new());
        assert!((s.amount().unwrap() - (20.0 * 0.096 + 10.0 * 0.26)).abs() < 1e-9);
        let mut more = seconds.clone();
        more.insert("ec2.m5.xlarge".into(), 3600);
        more.insert(UNCLASSIFIED.into(), 3600);
        more.insert("ec2.t3.nano".into(), 0);
        let s = prices.savings(&more);
        assert_eq!(s.amount(), None);
        assert_eq!(
            s.unpriced,
            vec!["ec2.m5.xlarge".to_string(), UNCLASSIFIED.to_string()]
        );
    }
}
