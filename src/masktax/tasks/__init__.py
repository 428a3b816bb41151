"""The probe suite: curated word lists and the 16 few-shot rule-induction datasets."""
