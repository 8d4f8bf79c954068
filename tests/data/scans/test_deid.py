"""De-identification: every planted identifying value goes, pixels and geometry stay, UIDs map consistently."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from facegen.data.scans.deid import PROFILE, deidentify, identifying_values
from facegen.data.scans.dicom import read_dicom
from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.synthetic.ct import SCAN_DIRECTION
from facegen.io.volume import Volume

PLANTED = {
    "PatientName": "DOE^JANE^QX7",
    "PatientID": "PID-99812345",
    "PatientBirthDate": "19610412",
    "PatientBirthTime": "081500",
    "OtherPatientNames": "SMITH^JANE^QX7",
    "PatientAddress": "12 QX7 LANE, SPRINGFIELD",
    "PatientTelephoneNumbers": "555-0199-QX7",
    "PatientMotherBirthName": "ROE^MARY^QX7",
    "MilitaryRank": "CAPTAIN QX7",
    "EthnicGroup": "QX7 GROUP",
    "Occupation": "QX7 BAKER",
    "MedicalRecordLocator": "MRL-QX7-001",
    "PatientComments": "allergic to QX7",
    "AdditionalPatientHistory": "fall from QX7 ladder",
    "AdmittingDiagnosesDescription": "QX7 head trauma",
    "InstitutionName": "ST MARY QX7 HOSPITAL",
    "InstitutionAddress": "1 QX7 ROAD",
    "InstitutionalDepartmentName": "QX7 RADIOLOGY",
    "ReferringPhysicianName": "DR WHO QX7",
    "PerformingPhysicianName": "DR PERFORMS QX7",
    "NameOfPhysiciansReadingStudy": "DR READS QX7",
    "PhysiciansOfRecord": "DR RECORD QX7",
    "OperatorsName": "TECH QX7^ANNA",
    "RequestingPhysician": "DR ASKS QX7",
    "StationName": "CTQX7STATION",
    "AccessionNumber": "ACC-55519",
    "StudyID": "STUDY-QX7",
    "StudyDate": "20240229",
    "StudyTime": "101112",
    "SeriesDate": "20240301",
    "SeriesTime": "111213",
    "AcquisitionDate": "20240302",
    "AcquisitionTime": "121314",
    "ContentDate": "20240303",
    "ContentTime": "131415",
    "DeviceSerialNumber": "SN-QX7-4711",
    "ProtocolName": "QX7 HEAD PROTOCOL",
    "StudyDescription": "HEAD QX7 TRAUMA",
    "SeriesDescription": "AXIAL QX7 BONE",
    "ImageComments": "QX7 comment",
    "StudyInstanceUID": "1.2.826.0.1.3680043.99812345.1",
    "FrameOfReferenceUID": "1.2.826.0.1.3680043.99812345.2",
    "PatientSex": "F",
    "PatientAge": "045Y",
}
NESTED = {"other id": "PID-OTHER-QX7", "referenced study": "1.2.826.0.1.3680043.99812345.3", "private": "QX7 PRIVATE"}
SEARCHED = [v for k, v in PLANTED.items() if k not in ("PatientSex", "PatientAge")] + list(NESTED.values())


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> list[Dataset]:
    """Two slices with every kind of identifying value planted: attributes, sequences, private tags."""
    volume = Volume(
        np.arange(6 * 5 * 2, dtype=np.int16).reshape(6, 5, 2) * 10, (0.5, 0.6, 2.0), (1, 2, 3), SCAN_DIRECTION
    )
    paths = write_dicom_series(volume, tmp_path_factory.mktemp("deid") / "case", tags=PLANTED, seed=4)
    out = []
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.OtherPatientIDsSequence = Sequence([_item(PatientID=NESTED["other id"], TypeOfPatientID="TEXT")])
        ds.ReferencedStudySequence = Sequence([_item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1",
                                                     ReferencedSOPInstanceUID=NESTED["referenced study"])])  # fmt: skip
        ds.private_block(0x0011, "QX7 VENDOR", create=True).add_new(0x01, "LO", NESTED["private"])
        out.append(ds)
    out[1].SourceImageSequence = Sequence([_item(ReferencedSOPClassUID=out[0].SOPClassUID,
                                                 ReferencedSOPInstanceUID=out[0].SOPInstanceUID)])  # fmt: skip
    return out


def _saved(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _old_uids(ds: Dataset) -> list[str]:
    return [
        str(ds[k].value) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
    ]


def test_profile_names_real_attributes() -> None:
    assert all(tag_for_keyword(keyword) is not None for keyword in PROFILE)
    for keyword in ("PatientName", "PatientBirthDate", "InstitutionName", "AccessionNumber", "StudyInstanceUID",
                    "OtherPatientIDsSequence", "ReferencedPatientSequence", "RequestAttributesSequence"):  # fmt: skip
        assert keyword in PROFILE


def test_identifying_values_finds_the_planted(slices) -> None:
    found = set(identifying_values(slices[0]))
    assert set(SEARCHED) | set(_old_uids(slices[0])) <= found
    assert "CT Image Storage" not in found and str(slices[0].SOPClassUID) not in found


def test_deidentify_removes_every_planted_value(slices) -> None:
    for ds in slices:
        clean = deidentify(ds)
        assert identifying_values(clean, uids=False) == []
        forbidden = SEARCHED + _old_uids(ds) + ["045Y"]
        for text in (str(clean).encode(), _saved(clean)):
            assert [f for f in forbidden if f.encode() in text] == []
        assert clean.PatientIdentityRemoved == "YES" and clean.DeidentificationMethod
        assert clean.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "AccessionNumber"):
            assert keyword in clean and not clean[keyword].value  # type 2: present, empty
        assert "PatientAge" not in clean and "InstitutionName" not in clean
        assert ds.PatientName == PLANTED["PatientName"]  # the input is left alone


def test_deidentify_keeps_pixels_and_geometry(slices) -> None:
    ds = slices[1]
    clean = pydicom.dcmread(io.BytesIO(_saved(deidentify(ds))))
    np.testing.assert_array_equal(clean.pixel_array, ds.pixel_array)
    geometry = ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "Rows", "Columns"]
    for keyword in [*geometry, "RescaleIntercept", "RescaleSlope", "Modality", "SeriesNumber", "SOPClassUID"]:
        assert clean[keyword].value == ds[keyword].value, keyword
    assert "ReferencedStudySequence" not in clean and "OtherPatientIDsSequence" not in clean
    assert clean.SourceImageSequence[0].ReferencedSOPClassUID == ds.SOPClassUID


def test_uids_are_replaced_consistently(slices) -> None:
    a, b = (deidentify(ds) for ds in slices)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert a[keyword].value == b[keyword].value != slices[0][keyword].value
    assert a.SOPInstanceUID != b.SOPInstanceUID and a.SOPInstanceUID != slices[0].SOPInstanceUID
    assert b.SourceImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID  # references still resolve
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    assert deidentify(slices[0]).SOPInstanceUID == a.SOPInstanceUID  # deterministic
    assert deidentify(slices[0], salt="secret").SOPInstanceUID != a.SOPInstanceUID
    assert a.SOPInstanceUID.is_valid and len(a.SOPInstanceUID) <= 64


def test_sex_and_age_kept_only_when_asked(slices) -> None:
    kept = deidentify(slices[0], keep_sex_age=True)
    assert kept.PatientSex == "F" and kept.PatientAge == "045Y"
    assert [c.CodeValue for c in kept.DeidentificationMethodCodeSequence] == ["113100", "113108"]
    assert identifying_values(kept, uids=False, keep_sex_age=True) == []


def test_deidentified_series_still_reads(slices, tmp_path: Path) -> None:
    for n, ds in enumerate(slices):
        (tmp_path / f"{n}.dcm").write_bytes(_saved(deidentify(ds, keep_sex_age=True)))
    scan = read_dicom(tmp_path, keep_sex_age=True)
    assert scan.volume.shape == (6, 5, 2) and scan.age_years == 45.0
    np.testing.assert_array_equal(scan.volume.array[:, :, 1], slices[1].pixel_array.T.astype(int) - 1024)
